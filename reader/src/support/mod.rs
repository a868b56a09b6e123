//! What every layer of the reader uses and that knows nothing of the
//! pipeline: JSON text, time formats, thread priority, the process's own
//! CPU time, counters over the last minute, rate-limited error messages
//! and the format of the log.

pub mod cpu;
pub mod json;
pub mod log;
pub mod priority;
pub mod recent;
pub mod report;
pub mod timefmt;
