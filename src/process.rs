//! Process and thread identity, cached so the hot path makes no syscall.
//! A `fork` child resets the caches (pthread_atfork), so its events carry its
//! own pid and it registers its own writer-table entry.

use crate::sync::local::{AtomicU32, Ordering::Relaxed};
use std::cell::Cell;
use std::sync::Once;

static PID: AtomicU32 = AtomicU32::new(0);
static ATFORK: Once = Once::new();

thread_local! {
    static TID: Cell<u32> = const { Cell::new(0) };
}

extern "C" fn reset_after_fork() {
    PID.store(0, Relaxed);
    // The child's only thread is the one that called fork.
    let _ = TID.try_with(|t| t.set(0));
}

/// The current process id.
#[inline]
pub fn pid() -> u32 {
    let p = PID.load(Relaxed);
    if p != 0 {
        return p;
    }
    ATFORK.call_once(|| {
        // SAFETY: registering a handler that only stores to atomics and a
        // thread-local Cell, both async-signal-safe operations.
        unsafe { libc::pthread_atfork(None, None, Some(reset_after_fork)) };
    });
    // SAFETY: getpid has no preconditions.
    let p = unsafe { libc::getpid() } as u32;
    PID.store(p, Relaxed);
    p
}

/// The current thread id (Linux tid).
#[inline]
pub fn tid() -> u32 {
    TID.with(|t| {
        let v = t.get();
        if v != 0 {
            return v;
        }
        // SAFETY: gettid has no preconditions.
        let v = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
        t.set(v);
        v
    })
}

/// Start time of a process in clock ticks after boot (`/proc/PID/stat` field
/// 22), or `None` if the process does not exist.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; the
    // fields after the last ')' are plain.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process that registered as (`pid`, `start_time`) still runs.
pub fn is_alive(pid: u32, start: u64) -> bool {
    pid != 0 && start_time(pid) == Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_identified() {
        let p = pid();
        assert_eq!(p, std::process::id());
        let st = start_time(p).expect("own stat");
        assert!(is_alive(p, st));
        assert!(!is_alive(p, st + 1));
        assert_ne!(tid(), 0);
    }
}
