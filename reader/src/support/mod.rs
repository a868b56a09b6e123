//! What every layer of the reader uses and that knows nothing of the
//! pipeline: JSON text, time formats, thread priority and the process's
//! own CPU time.

pub mod cpu;
pub mod json;
pub mod priority;
pub mod timefmt;
