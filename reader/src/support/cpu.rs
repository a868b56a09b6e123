//! CPU time of the reader's own process, for its self-metrics.

/// CPU time (user + system) of this process in clock ticks, from
/// `/proc/self/stat`; 0 where unavailable.
pub fn cpu_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|text| super::procfs::parse_stat(&text))
        .map_or(0, |s| s.utime + s.stime)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
pub fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}
