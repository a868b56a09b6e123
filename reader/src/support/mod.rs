//! What every layer of the reader uses and that knows nothing of the
//! pipeline: JSON text, time formats, thread priority, the process's own
//! CPU time, counters over the last minute and rate-limited error
//! messages.

pub mod cpu;
pub mod json;
pub mod priority;
pub mod recent;
pub mod report;
pub mod timefmt;
