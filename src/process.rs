//! Process and thread identity, cached so the hot path makes no syscall.
//! A `fork` child resets the caches (pthread_atfork), so its events carry its
//! own pid and it registers its own writer-table entry.

use crate::sync::local::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::cell::Cell;
use std::sync::Once;

static PID: AtomicU32 = AtomicU32::new(0);
/// Start time of this process, plus one (0: not read yet).
static START: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();

thread_local! {
    static TID: Cell<u32> = const { Cell::new(0) };
}

extern "C" fn reset_after_fork() {
    PID.store(0, Relaxed);
    START.store(0, Relaxed);
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

/// State letter (`/proc/PID/stat` field 3) and start time in clock ticks
/// after boot (field 22) of a process, or `None` if it does not exist.
fn stat(pid: u32) -> Option<(u8, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; the
    // fields after the last ')' are plain.
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = *rest.next()?.as_bytes().first()?;
    Some((state, rest.nth(18)?.parse().ok()?))
}

/// Start time of a process in clock ticks after boot (`/proc/PID/stat` field
/// 22), or `None` if the process does not exist.
pub fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// Start time of the current process (0 if `/proc` does not tell), read
/// once per process.
pub fn own_start_time() -> u64 {
    let s = START.load(Relaxed);
    if s != 0 {
        return s - 1;
    }
    let s = start_time(pid()).unwrap_or(0);
    START.store(s + 1, Relaxed);
    s
}

/// Whether the process that registered as (`pid`, `start_time`) still runs
/// (a zombie, killed and not yet reaped, does not).
pub fn is_alive(pid: u32, start: u64) -> bool {
    pid != 0 && matches!(stat(pid), Some((state, s)) if s == start && !gone(state))
}

/// Whether a `/proc` state letter means the process has exited.
fn gone(state: u8) -> bool {
    matches!(state, b'Z' | b'X' | b'x')
}

/// Whether process `pid` runs, and is the one that started at `start` when
/// that is known (non-zero). A pid that cannot be checked (another user's
/// process) counts as running.
pub fn runs(pid: u32, start: u64) -> bool {
    if pid == 0 {
        return false;
    }
    match stat(pid) {
        Some((state, found)) => !gone(state) && (start == 0 || found == start),
        None => {
            // No /proc entry readable: ask the kernel directly.
            // SAFETY: kill with signal 0 only checks that the process exists.
            let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
            r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
        }
    }
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
