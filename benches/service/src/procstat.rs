//! CPU time of a process (all its threads) from `/proc/PID/stat`.

use std::time::Duration;

/// User plus system CPU time `pid` has used so far.
pub fn cpu_time(pid: u32) -> std::io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse(&stat).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("/proc/{pid}/stat: unexpected format: {stat}"),
        )
    })
}

/// Clock ticks per second of the `utime`/`stime` fields.
fn ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

/// utime + stime of a `/proc/PID/stat` line. The command name (field 2) is
/// in parentheses and may hold spaces: fields are counted after the last
/// `)`, where `state` is field 3, so utime (14) and stime (15) are the 12th
/// and 13th.
fn parse(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime + stime;
    let per_second = ticks_per_second();
    Some(Duration::from_nanos(
        ticks * 1_000_000_000 / per_second.max(1),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime_after_a_name_with_spaces() {
        let line = "4242 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0 4 0 100 0 0";
        let per_second = ticks_per_second();
        assert_eq!(
            parse(line),
            Some(Duration::from_nanos(400 * 1_000_000_000 / per_second))
        );
        assert_eq!(parse("garbage"), None);
    }

    #[test]
    fn own_cpu_time_grows_with_work() {
        let pid = std::process::id();
        let before = cpu_time(pid).expect("own stat");
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(100) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        assert!(cpu_time(pid).expect("own stat") > before);
    }
}
