//! Wall-clock formatting without a calendar dependency: UTC civil dates from
//! Unix nanoseconds, for file names and console output.

/// UTC calendar fields of a Unix time in ns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    /// Year.
    pub year: i64,
    /// Month 1..=12.
    pub month: u32,
    /// Day 1..=31.
    pub day: u32,
    /// Hour 0..=23.
    pub hour: u32,
    /// Minute 0..=59.
    pub minute: u32,
    /// Second 0..=59.
    pub second: u32,
    /// Millisecond 0..=999.
    pub milli: u32,
}

/// Converts Unix ns to UTC calendar fields (days-to-civil after Howard
/// Hinnant's algorithm).
pub fn civil(unix_ns: u64) -> Civil {
    let secs = (unix_ns / 1_000_000_000) as i64;
    let milli = ((unix_ns / 1_000_000) % 1000) as u32;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        minute: (rem % 3600 / 60) as u32,
        second: (rem % 60) as u32,
        milli,
    }
}

/// `20261125T100312.123Z`: sortable, no characters a shell or file system
/// treats specially.
pub fn file_stamp(unix_ns: u64) -> String {
    let c = civil(unix_ns);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.milli
    )
}

/// `2026-11-25T10:03:12.123Z` (RFC 3339, UTC, milliseconds).
pub fn rfc3339_millis(unix_ns: u64) -> String {
    let c = civil(unix_ns);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.milli
    )
}

/// `10:03:12.123` (UTC time of day, milliseconds).
pub fn time_of_day_millis(unix_ns: u64) -> String {
    let c = civil(unix_ns);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        c.hour, c.minute, c.second, c.milli
    )
}

/// Current wall-clock time in ns since the Unix epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(u128::from(u64::MAX)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        // 2000-02-29T12:34:56.789Z, a leap day.
        assert_eq!(
            rfc3339_millis(951_827_696_789_000_000),
            "2000-02-29T12:34:56.789Z"
        );
        assert_eq!(
            file_stamp(1_764_065_000_000_000_000),
            "20251125T100320.000Z"
        );
        assert_eq!(
            time_of_day_millis(1_764_065_000_123_456_789),
            "10:03:20.123"
        );
    }
}
