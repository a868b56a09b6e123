//! Process and thread identity, cached so the hot path makes no syscall.
//! A `fork` child resets the caches (pthread_atfork), so its events carry its
//! own pid and it registers its own writer-table entry.

use crate::sync::local::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
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

/// Liveness checks of the same processes over and over (the consumer's,
/// every liveness interval), without reading `/proc` each time: once a
/// process is found running as (`pid`, `start`), a pidfd of it is kept, and
/// later checks poll that descriptor, which turns readable when the process
/// exits (one `poll` against an `open`, a `read` and a `close` of
/// `/proc/PID/stat`). Where pidfds are unavailable (Linux before 5.3, a pid
/// in another namespace, no descriptor left) each check falls back to
/// [`runs`]. At most [`MAX_PIDFDS`] descriptors are kept in a process, all
/// watches together (the soft limit on open files is often 1024); past
/// that, checks read `/proc`.
#[derive(Default)]
pub struct Watch {
    /// (pid, start time, pidfd of that process, seen in the current round).
    watched: Vec<(u32, u64, Pidfd, bool)>,
    /// Answers of this round for processes without a kept descriptor (a
    /// process holding several lanes is checked once a round).
    checked: Vec<(u32, u64, bool)>,
}

impl Watch {
    /// [`runs`]`(pid, start)`, answered from a kept pidfd when there is one.
    pub fn runs(&mut self, pid: u32, start: u64) -> bool {
        if let Some(i) = self
            .watched
            .iter()
            .position(|&(p, s, _, _)| p == pid && s == start)
        {
            if exited(&self.watched[i].2) {
                self.watched.swap_remove(i);
                return false;
            }
            self.watched[i].3 = true;
            return true;
        }
        if let Some(&(_, _, a)) = self
            .checked
            .iter()
            .find(|&&(p, s, _)| p == pid && s == start)
        {
            return a;
        }
        let mut a = runs(pid, start);
        if a && start != 0 {
            if let Some(fd) = pidfd_open(pid) {
                // The pid may have been reused between the check and the
                // open: the descriptor is kept only if it names the process
                // that was checked, and that one is gone otherwise. Where
                // `/proc` does not tell (another user's process), no
                // descriptor is kept and the answer stands.
                match stat(pid) {
                    Some((state, s)) if s == start && !gone(state) => {
                        self.watched.push((pid, start, fd, true));
                        return true;
                    }
                    Some(_) => a = false,
                    None => {}
                }
            }
        }
        self.checked.push((pid, start, a));
        a
    }

    /// Closes the descriptors of processes not asked about since the last
    /// call (writers that left the ring), and starts a new round.
    pub fn end_round(&mut self) {
        self.checked.clear();
        self.watched.retain(|w| w.3);
        for w in &mut self.watched {
            w.3 = false;
        }
    }

    /// Processes with a kept descriptor.
    pub fn len(&self) -> usize {
        self.watched.len()
    }

    /// Whether no descriptor is kept.
    pub fn is_empty(&self) -> bool {
        self.watched.is_empty()
    }
}

/// Most pidfds that [`Watch`]es keep open in one process.
pub const MAX_PIDFDS: usize = 256;

/// pidfds kept open by every [`Watch`] of this process.
static PIDFDS: AtomicUsize = AtomicUsize::new(0);

/// A kept pidfd, counted in [`PIDFDS`] while open.
struct Pidfd(std::os::fd::OwnedFd);

impl Drop for Pidfd {
    fn drop(&mut self) {
        // ORDERING: Relaxed, no pair: a count of open descriptors, and no
        // data is published through it.
        PIDFDS.fetch_sub(1, Relaxed);
    }
}

/// A pidfd of `pid`, or `None` where the kernel does not give one or
/// [`MAX_PIDFDS`] are open (the descriptor has close-on-exec set).
fn pidfd_open(pid: u32) -> Option<Pidfd> {
    use std::os::fd::FromRawFd;
    // ORDERING: Relaxed, no pair (here and below): a count of open
    // descriptors, no data published through it. Reserved before the open
    // so that watches on several threads never keep more than the budget.
    if PIDFDS.fetch_add(1, Relaxed) >= MAX_PIDFDS {
        PIDFDS.fetch_sub(1, Relaxed);
        return None;
    }
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; it touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        PIDFDS.fetch_sub(1, Relaxed);
        return None;
    }
    // SAFETY: the descriptor was just returned by the kernel and is owned
    // by nothing else.
    Some(Pidfd(unsafe {
        std::os::fd::OwnedFd::from_raw_fd(fd as libc::c_int)
    }))
}

/// Whether the process of a pidfd has exited (its descriptor is readable).
/// A poll that fails counts as running: the next check asks again.
fn exited(fd: &Pidfd) -> bool {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd {
        fd: fd.0.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd for the duration of the call; timeout
    // 0 returns at once.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
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

    #[test]
    fn watch_sees_a_child_exit_and_closes_what_is_no_longer_asked_about() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let p = child.id();
        let st = start_time(p).expect("child stat");
        let own = (pid(), start_time(pid()).expect("own stat"));
        let mut w = Watch::default();
        assert!(w.runs(p, st));
        assert!(w.runs(own.0, own.1));
        assert!(!w.runs(p, st + 1), "another start time is another process");
        assert_eq!(w.len(), 2);
        // Asked again: answered from the kept descriptor.
        assert!(w.runs(p, st));
        w.end_round();
        assert_eq!(w.len(), 2);
        child.kill().expect("kill");
        // Exited and not yet reaped (a zombie) already counts as gone.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while w.runs(p, st) {
            assert!(std::time::Instant::now() < deadline, "exit not seen");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!w.runs(p, st));
        child.wait().expect("reap");
        assert!(!w.runs(p, st));
        // A round in which only this process was asked about keeps its
        // descriptor alone.
        w.end_round();
        assert!(w.runs(own.0, own.1));
        w.end_round();
        assert_eq!(w.len(), 1);
        w.end_round();
        assert!(w.is_empty());
    }
}
