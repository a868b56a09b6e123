//! The values of command-line options that clap does not parse itself:
//! listening addresses (host names allowed), durations and sizes.

use anyhow::Context;
use std::net::SocketAddr;
use std::time::Duration;

/// A listening address as given: `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT`.
/// A host name is resolved when the dashboard starts
/// ([`resolve`](ListenAddr::resolve)), not while the command line is parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenAddr(String);

impl ListenAddr {
    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address to bind: an IP address as it is; a host name's first
    /// IPv4 address (as `localhost` means 127.0.0.1 to most servers), else
    /// its first address.
    pub fn resolve(&self) -> anyhow::Result<SocketAddr> {
        use std::net::ToSocketAddrs;
        if let Ok(addr) = self.0.parse::<SocketAddr>() {
            return Ok(addr);
        }
        let addrs: Vec<SocketAddr> = self
            .0
            .to_socket_addrs()
            .with_context(|| format!("resolving --ui-addr {}", self.0))?
            .collect();
        addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .copied()
            .ok_or_else(|| anyhow::anyhow!("--ui-addr {}: the name has no address", self.0))
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a listening address: `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT`,
/// the host a name of letters, digits, `-` and `.` (resolved later).
pub fn parse_listen_addr(text: &str) -> Result<ListenAddr, String> {
    if text.parse::<SocketAddr>().is_ok() {
        return Ok(ListenAddr(text.to_string()));
    }
    let host_name = |host: &str| {
        !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    };
    match text.rsplit_once(':') {
        Some((host, port)) if host_name(host) && port.parse::<u16>().is_ok() => {
            Ok(ListenAddr(text.to_string()))
        }
        _ => Err(format!(
            "{text:?} is not an address: expected IP:PORT or HOST:PORT, e.g. 127.0.0.1:9470 or localhost:9470"
        )),
    }
}

/// Parses `500ms`, `2s`, `1.5m`, `12h`, `7d`, `250us`, `100ns`; a bare
/// number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 500ms, 2s, 5m, 12h, 7d)"))?;
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use ns, us, ms, s, m, h, d)"
            ))
        }
    };
    let secs = value * scale;
    if !secs.is_finite() || secs > 1e12 {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `1048576`, `64K`, `100M`, `2G` (binary multiples; `KiB`/`MB`
/// spellings accepted).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 1048576, 64K, 100M, 2G)"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        other => return Err(format!("{text:?}: unknown unit {other:?} (use K, M, G)")),
    };
    value
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_take_host_names() {
        let resolved = |text: &str| parse_listen_addr(text).unwrap().resolve().unwrap();
        let addr = resolved("localhost:9470");
        assert!(
            addr.ip().is_loopback() && addr.is_ipv4() && addr.port() == 9470,
            "{addr}"
        );
        assert_eq!(
            resolved("127.0.0.1:0"),
            "127.0.0.1:0".parse::<SocketAddr>().unwrap()
        );
        assert!(resolved("[::1]:9470").is_ipv6());
        for bad in [
            "localhost",
            "localhost:http",
            "127.0.0.1",
            ":9470",
            "a b:1",
            "x/y:1",
        ] {
            assert!(parse_listen_addr(bad).is_err(), "{bad}");
        }
        // Names are resolved when the dashboard starts, not while parsing.
        let unknown = parse_listen_addr("no-such-host.invalid:9470").unwrap();
        assert!(unknown.resolve().is_err());
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("100M"), Ok(100 << 20));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }
}
