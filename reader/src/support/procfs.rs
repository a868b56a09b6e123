//! CPU and memory of a process from Linux's `/proc`: `stat` (CPU ticks,
//! start time, state, threads, virtual size), `statm` (resident pages) and
//! `smaps_rollup` (PSS, which the kernel lets only the process's owner or a
//! privileged reader see). Parsing is separate from reading so that every
//! layout, including a command name holding spaces and parentheses, is
//! tested on text.

use std::path::Path;

/// The fields of `/proc/PID/stat` the reader uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// State letter (`R`, `S`, `Z`, ...).
    pub state: u8,
    /// User-mode CPU time, clock ticks.
    pub utime: u64,
    /// Kernel-mode CPU time, clock ticks.
    pub stime: u64,
    /// Threads.
    pub threads: u64,
    /// Start time, clock ticks after boot (with the pid, the process's
    /// identity: a recycled pid has another start time).
    pub start_time: u64,
    /// Virtual memory size, bytes.
    pub vsize: u64,
}

impl Stat {
    /// Whether the process has exited (a zombie not reaped yet included).
    pub fn exited(&self) -> bool {
        matches!(self.state, b'Z' | b'X' | b'x')
    }
}

/// Parses `/proc/PID/stat`. The command name (field 2) is in parentheses
/// and may itself hold spaces and parentheses, so the fields are counted
/// from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    // Field 3 (state) is the first after the name.
    let fields: Vec<&str> = text[close + 1..].split_ascii_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    Some(Stat {
        state: *fields.first()?.as_bytes().first()?,
        utime: field(14)?,
        stime: field(15)?,
        threads: field(20)?,
        start_time: field(22)?,
        vsize: field(23)?,
    })
}

/// Parses `/proc/PID/statm`: (total program size, resident set), in pages.
pub fn parse_statm(text: &str) -> Option<(u64, u64)> {
    let mut it = text.split_ascii_whitespace();
    let size = it.next()?.parse().ok()?;
    let resident = it.next()?.parse().ok()?;
    Some((size, resident))
}

/// Parses the `Pss:` line of `/proc/PID/smaps_rollup`, in bytes.
pub fn parse_smaps_rollup_pss(text: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix("Pss:")?;
        let mut it = rest.split_ascii_whitespace();
        let kb: u64 = it.next()?.parse().ok()?;
        match it.next() {
            Some("kB") | None => Some(kb * 1024),
            Some(_) => None,
        }
    })
}

/// One reading of a process: its `stat` and `statm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// From `stat`.
    pub stat: Stat,
    /// Resident set, bytes (`statm`).
    pub rss_bytes: u64,
}

/// Reads `stat` and `statm` of the process whose `/proc` directory is
/// `dir`; `None` when it is gone or unreadable.
pub fn read(dir: &Path) -> Option<Reading> {
    let stat = parse_stat(&std::fs::read_to_string(dir.join("stat")).ok()?)?;
    let (_, resident) = parse_statm(&std::fs::read_to_string(dir.join("statm")).ok()?)?;
    Some(Reading {
        stat,
        rss_bytes: resident * page_size(),
    })
}

/// Reads process `pid`; see [`read`].
pub fn read_pid(pid: u32) -> Option<Reading> {
    read(Path::new(&format!("/proc/{pid}")))
}

/// The proportional set size of the process whose `/proc` directory is
/// `dir`, bytes, from `smaps_rollup`; `None` when not readable (another
/// user's process, a kernel without the file, or the process gone). The
/// kernel walks the process's page tables for it: 6-10 ms per GB resident
/// on the development VM, against ~14 µs for `stat` or `statm`.
pub fn read_pss(dir: &Path) -> Option<u64> {
    std::fs::read_to_string(dir.join("smaps_rollup"))
        .ok()
        .as_deref()
        .and_then(parse_smaps_rollup_pss)
}

/// Bytes per page (`sysconf(_SC_PAGESIZE)`).
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

/// Boot time, seconds since the Unix epoch (`btime` of `/proc/stat`).
pub fn boot_time_secs() -> Option<u64> {
    parse_btime(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// The `btime` line of `/proc/stat`.
pub fn parse_btime(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

/// File descriptors this process has open (entries of `/proc/self/fd`,
/// less the one the listing itself holds).
pub fn open_fds() -> Option<u64> {
    let n = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(n.saturating_sub(1))
}

/// The soft limit on open file descriptors (`RLIMIT_NOFILE`).
pub fn max_fds() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the call's duration.
    let r = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (r == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real line of a process named "a) (b c" (comm may hold anything
    // but NUL and is cut at 15 bytes).
    const STAT: &str = "4242 (a) (b c) S 1 4242 4242 0 -1 4194560 1500 0 0 0 \
        250 75 0 0 20 0 3 0 987654 123456789 2048 18446744073709551615 \
        1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!(
            s,
            Stat {
                state: b'S',
                utime: 250,
                stime: 75,
                threads: 3,
                start_time: 987654,
                vsize: 123456789,
            }
        );
        assert!(!s.exited());
        let zombie = STAT.replace(") S ", ") Z ");
        assert!(parse_stat(&zombie).unwrap().exited());
    }

    #[test]
    fn a_plain_name_and_a_name_of_parentheses_parse_alike() {
        let plain = STAT.replace("(a) (b c)", "(gunicorn)");
        let odd = STAT.replace("(a) (b c)", "(()) (()");
        assert_eq!(parse_stat(&plain), parse_stat(STAT));
        assert_eq!(parse_stat(&odd), parse_stat(STAT));
    }

    #[test]
    fn truncated_or_garbled_stat_is_refused() {
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("4242 (x"), None);
        assert_eq!(parse_stat("4242 x) S 1"), None, "no opening parenthesis");
        assert_eq!(parse_stat("4242 (x) S 1 2 3"), None, "fields missing");
        let bad = STAT.replace(" 250 75 ", " 250 seventy-five ");
        assert_eq!(parse_stat(&bad), None);
    }

    #[test]
    fn statm_gives_size_and_resident_pages() {
        assert_eq!(
            parse_statm("5000 1234 300 20 0 900 0\n"),
            Some((5000, 1234))
        );
        assert_eq!(parse_statm("5000"), None);
        assert_eq!(parse_statm(""), None);
    }

    #[test]
    fn pss_comes_from_the_rollup_in_bytes() {
        let rollup = "00400000-7ffd0000 ---p 00000000 00:00 0    [rollup]\n\
            Rss:               10240 kB\n\
            Pss:                4096 kB\n\
            Pss_Anon:           2048 kB\n";
        assert_eq!(parse_smaps_rollup_pss(rollup), Some(4096 * 1024));
        assert_eq!(parse_smaps_rollup_pss("Rss: 10 kB\n"), None);
        assert_eq!(parse_smaps_rollup_pss("Pss: lots kB\n"), None);
        assert_eq!(parse_smaps_rollup_pss("Pss: 5 MB\n"), None);
    }

    #[test]
    fn an_unreadable_rollup_leaves_pss_unknown_and_the_rest_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stat"), STAT).unwrap();
        std::fs::write(dir.path().join("statm"), "5000 1234 300 20 0 900 0\n").unwrap();
        // As for another user's process: the file is there, reading it is
        // refused (a directory in its place fails the same way for root).
        std::fs::create_dir(dir.path().join("smaps_rollup")).unwrap();
        let r = read(dir.path()).unwrap();
        assert_eq!(read_pss(dir.path()), None);
        assert_eq!(r.rss_bytes, 1234 * page_size());
        assert_eq!(r.stat.utime + r.stat.stime, 325);
        std::fs::remove_dir(dir.path().join("smaps_rollup")).unwrap();
        std::fs::write(dir.path().join("smaps_rollup"), "Pss: 8 kB\n").unwrap();
        assert_eq!(read_pss(dir.path()), Some(8192));
        std::fs::remove_file(dir.path().join("stat")).unwrap();
        assert_eq!(read(dir.path()), None, "a process gone");
    }

    #[test]
    fn this_process_reads_itself() {
        let r = read_pid(std::process::id()).unwrap();
        assert!(r.rss_bytes > 0 && r.stat.vsize >= r.rss_bytes);
        let own = Path::new("/proc/self");
        assert!(read_pss(own).is_some_and(|pss| pss > 0 && pss <= r.rss_bytes * 2));
        assert!(r.stat.threads >= 1);
        assert!(parse_btime("cpu 1 2\nbtime 1700000000\n") == Some(1_700_000_000));
        assert!(boot_time_secs().unwrap() > 1_000_000_000);
        assert!(open_fds().unwrap() >= 3);
        assert!(max_fds().unwrap() >= 64);
    }
}
