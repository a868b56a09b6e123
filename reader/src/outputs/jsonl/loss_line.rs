//! The JSONL `LOSS` line: one [`LossMarker`] as one JSON object (schema in
//! docs/jsonl.md).
//!
//! ```json
//! {"ts_ns":..,"kind":"LOSS","ring_id":"..","pid":123,"service":"shop","dropped":5,"overwritten":0,"abandoned":1,"torn":0,"from_ts_ns":..,"to_ts_ns":..,"cumulative":{"dropped":5,"overwritten":0,"abandoned":1,"torn":0}}
//! ```
//!
//! A LOSS line never ends with `"ring_id":..,"seq":N}` as event lines do,
//! so the restart scan of event positions ([`super::line::parse_tail`])
//! ignores it; [`parse`] reads its `ring_id` and `cumulative` back instead.

use crate::ingest::loss::LossMarker;
use crate::support::json;
use crate::views::LossTotals;
use serde::Deserialize;

/// Appends one marker of the ring whose id is `ring_id_json` (a JSON
/// string literal) as a line.
pub fn render(buf: &mut Vec<u8>, ring_id_json: &[u8], m: &LossMarker) {
    buf.extend_from_slice(b"{\"ts_ns\":");
    json::push_u64(buf, m.to_ts_ns);
    buf.extend_from_slice(b",\"kind\":\"LOSS\",\"ring_id\":");
    buf.extend_from_slice(ring_id_json);
    buf.extend_from_slice(b",\"pid\":");
    match m.pid {
        Some(pid) => json::push_u64(buf, u64::from(pid)),
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(b",\"service\":");
    match &m.service {
        Some(s) => json::push_str(buf, s),
        None => buf.extend_from_slice(b"null"),
    }
    push_counts(buf, &m.counts);
    buf.extend_from_slice(b",\"from_ts_ns\":");
    json::push_u64(buf, m.from_ts_ns);
    buf.extend_from_slice(b",\"to_ts_ns\":");
    json::push_u64(buf, m.to_ts_ns);
    buf.extend_from_slice(b",\"cumulative\":{");
    push_counts(buf, &m.cumulative);
    buf.extend_from_slice(b"}}\n");
}

fn push_counts(buf: &mut Vec<u8>, c: &LossTotals) {
    // After `{` in `cumulative`: no leading comma for the first field.
    if buf.last() != Some(&b'{') {
        buf.push(b',');
    }
    buf.extend_from_slice(b"\"dropped\":");
    json::push_u64(buf, c.dropped);
    buf.extend_from_slice(b",\"overwritten\":");
    json::push_u64(buf, c.overwritten);
    buf.extend_from_slice(b",\"abandoned\":");
    json::push_u64(buf, c.abandoned);
    buf.extend_from_slice(b",\"torn\":");
    json::push_u64(buf, c.torn);
}

#[derive(Deserialize)]
struct Parsed {
    kind: String,
    ring_id: String,
    to_ts_ns: u64,
    cumulative: LossTotals,
}

/// The `(ring_id, cumulative, to_ts_ns)` of a LOSS line, `None` for any
/// other line.
pub fn parse(line: &[u8]) -> Option<(u64, LossTotals, u64)> {
    const KIND: &[u8] = b"\"kind\":\"LOSS\"";
    if !line.starts_with(b"{\"ts_ns\":") || !line.windows(KIND.len()).any(|w| w == KIND) {
        return None;
    }
    let p: Parsed = serde_json::from_slice(line).ok()?;
    if p.kind != "LOSS" || p.ring_id.len() != 16 {
        return None;
    }
    let ring_id = u64::from_str_radix(&p.ring_id, 16).ok()?;
    Some((ring_id, p.cumulative, p.to_ts_ns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn renders_valid_json_that_parses_back() {
        let m = LossMarker {
            pid: Some(42),
            writer: Some(0),
            service: Some(Arc::from("sh\"op\n")),
            counts: LossTotals {
                dropped: 5,
                overwritten: 2,
                abandoned: 1,
                torn: 0,
            },
            from_ts_ns: 10,
            to_ts_ns: 20,
            before_event: 0,
            cumulative: LossTotals {
                dropped: 7,
                overwritten: 2,
                abandoned: 1,
                torn: 3,
            },
        };
        let mut buf = Vec::new();
        render(&mut buf, b"\"00000000000000ff\"", &m);
        assert!(buf.ends_with(b"}\n"));
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["kind"], "LOSS");
        assert_eq!(v["pid"], 42);
        assert_eq!(v["service"], "sh\"op\n");
        assert_eq!(
            (v["dropped"].as_u64(), v["torn"].as_u64()),
            (Some(5), Some(0))
        );
        assert_eq!(v["cumulative"]["torn"], 3);
        assert_eq!(v["ts_ns"], 20);
        assert_eq!(
            super::super::line::parse_tail(&buf),
            None,
            "not an event line"
        );
        assert_eq!(parse(&buf[..buf.len() - 1]), Some((255, m.cumulative, 20)));
        let unknown = LossMarker {
            pid: None,
            service: None,
            ..m
        };
        buf.clear();
        render(&mut buf, b"\"00000000000000ff\"", &unknown);
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert!(v["pid"].is_null() && v["service"].is_null());
        assert_eq!(parse(b"{\"ts_ns\":1,\"kind\":\"FN\"}"), None);
    }
}
