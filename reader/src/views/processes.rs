//! CPU and memory of the writer processes of the attached rings and of the
//! reader itself, as sampled from `/proc` (see
//! [`crate::ingest::processes`]), as plain data.

use serde::Serialize;

/// Resources of the writer processes, per service with the per-process
/// breakdown, and of the reader.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProcessesSnapshot {
    /// Seconds between two samples of a process (0: sampling is off).
    pub interval_secs: f64,
    /// Most writer processes read per sampling tick; past it, the live
    /// writers are read in turn over the following ticks.
    pub max_per_tick: u64,
    /// Live writer processes of the attached rings, as of the last tick.
    pub writers: u64,
    /// Of which not read at the last tick for the cap.
    pub not_sampled: u64,
    /// Per service (`null`: writers that set none), by name.
    pub services: Vec<ServiceResources>,
    /// The reader's own process (`null` where `/proc` cannot tell).
    pub reader: Option<ReaderProcess>,
}

/// The writer processes of one service.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServiceResources {
    /// Service name.
    pub service: Option<String>,
    /// Live processes with a sample.
    pub processes: u64,
    /// CPU over the last interval, % of one core, summed over them.
    pub cpu_percent: f64,
    /// Resident memory summed over them, bytes (shared pages counted in
    /// each).
    pub rss_bytes: u64,
    /// PSS summed over them, bytes (shared pages split between the
    /// sharers); `null` unless readable for every one.
    pub pss_bytes: Option<u64>,
    /// Per process, by pid.
    pub workers: Vec<ProcessResources>,
}

/// The latest sample of one process.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ProcessResources {
    /// Process id.
    pub pid: u32,
    /// Process start time (ticks after boot): with the pid, its identity.
    pub start_time: u64,
    /// Service, if it set one.
    pub service: Option<String>,
    /// Rings it writes into.
    pub rings: Vec<String>,
    /// Wall ns of the sample.
    pub sampled_ns: u64,
    /// CPU time used since it started (user + system), seconds.
    pub cpu_seconds: f64,
    /// CPU between its previous sample and this one, % of one core
    /// (`null` at its first sample).
    pub cpu_percent: Option<f64>,
    /// Resident set, bytes.
    pub rss_bytes: u64,
    /// Proportional set size, bytes (`null` when `smaps_rollup` is not
    /// readable: another user's process, or a kernel without it).
    pub pss_bytes: Option<u64>,
    /// Virtual memory, bytes.
    pub virtual_bytes: u64,
    /// Threads.
    pub threads: u64,
}

/// The reader's own process: its sample and the figures of the standard
/// `process_*` metrics.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ReaderProcess {
    /// The sample (CPU over the last flush interval).
    #[serde(flatten)]
    pub process: ProcessResources,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: f64,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The limit on them (soft `RLIMIT_NOFILE`; `null` when unlimited).
    pub max_fds: Option<u64>,
}
