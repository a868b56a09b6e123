//! Clocks. Events carry `CLOCK_MONOTONIC` nanoseconds, read through the vDSO
//! (no syscall); the consumer converts them to wall-clock time with an offset
//! it measures itself.

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clock ids used here
    // exist on every Linux kernel.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `CLOCK_MONOTONIC` in ns: the timestamp every event carries.
#[inline]
pub fn mono_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// `CLOCK_REALTIME` in ns since the Unix epoch.
#[inline]
pub fn wall_ns() -> u64 {
    read(libc::CLOCK_REALTIME)
}

/// Offset that turns a monotonic reading into wall-clock time now:
/// `wall = mono + offset` (wrapping arithmetic).
pub fn wall_offset_ns() -> u64 {
    // Read the wall clock between two monotonic readings and use their
    // midpoint, so the offset is off by at most half the gap.
    let before = mono_ns();
    let wall = wall_ns();
    let after = mono_ns();
    wall.wrapping_sub(before + (after - before) / 2)
}
