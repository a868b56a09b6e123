//! Thread priority of the reader's background threads (the dashboard
//! server and the OTLP sender): below the drain loop's, so that when the
//! machine is short of CPU the draining goes first. A drain loop that falls
//! behind fills the ring and loses events unseen by every output; a slow
//! dashboard or a backed-up OTLP queue loses nothing the reader has not
//! counted.

/// Nice value of the background threads. With the drain loop at nice 0,
/// the scheduler gives it about ten times the share of such a thread.
pub const BACKGROUND_NICE: libc::c_int = 10;

/// Lowers the calling thread's priority to [`BACKGROUND_NICE`] (Linux nice
/// values are per thread). Failure only costs the priority, so it is
/// ignored.
pub fn lower_thread_priority() {
    // SAFETY: gettid has no preconditions and returns the caller's id.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    // SAFETY: setpriority has no memory-safety preconditions; raising
    // one's own nice value is always permitted.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, BACKGROUND_NICE);
    }
}
