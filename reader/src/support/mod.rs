//! What every layer of the reader uses and that knows nothing of the
//! pipeline: JSON text, time formats, thread priority, the process's own
//! CPU time, counters over the last minute, rate-limited error messages,
//! the format of the log, which processes hold a file, and the CPU and
//! memory of processes from `/proc`.

pub mod cpu;
pub mod holders;
pub mod json;
pub mod log;
pub mod priority;
pub mod procfs;
pub mod recent;
pub mod report;
pub mod timefmt;

#[cfg(test)]
pub mod test_event;
