//! The JSONL line: one event as one JSON object (schema in docs/jsonl.md).
//!
//! Rendered by hand into a reused buffer: names, ring id and service come
//! pre-escaped from the [`RingContext`] caches, numbers through `itoa`.
//! `ring_id` and `seq` are always the last two fields, so a restarting
//! reader can find the last exported position of each ring by looking at the
//! ends of lines only.

use crate::ingest::RingContext;
use crate::support::json;
use profilis::{Event, Kind, Method, Names, StrId};

/// Appends one event as a JSON object and a newline.
pub fn render(buf: &mut Vec<u8>, ctx: &mut RingContext, names: &Names, wall_ns: u64, e: &Event) {
    buf.extend_from_slice(b"{\"ts_ns\":");
    json::push_u64(buf, wall_ns);
    buf.extend_from_slice(match e.kind {
        Kind::Req => b",\"kind\":\"REQ\",\"name\":",
        Kind::Fn => b",\"kind\":\"FN\",\"name\":",
        Kind::Db => b",\"kind\":\"DB\",\"name\":",
        Kind::Custom => b",\"kind\":\"CUSTOM\",\"name\":",
    });
    buf.extend_from_slice(ctx.name_json(names, e.name));
    if e.kind == Kind::Req {
        if e.method != Method::None {
            buf.extend_from_slice(b",\"method\":\"");
            buf.extend_from_slice(e.method.as_str().as_bytes());
            buf.push(b'"');
        }
        buf.extend_from_slice(b",\"status\":");
        json::push_u64(buf, u64::from(e.status));
    }
    if e.kind != Kind::Custom {
        buf.extend_from_slice(b",\"dur_ns\":");
        json::push_u64(buf, e.dur_ns);
    }
    buf.extend_from_slice(if e.is_error() {
        b",\"error\":true"
    } else {
        b",\"error\":false"
    });
    if e.exception_type != StrId::NONE {
        buf.extend_from_slice(b",\"exception_type\":");
        buf.extend_from_slice(ctx.name_json(names, e.exception_type));
    }
    if let Some(message) = ctx.message(names, e.message) {
        buf.extend_from_slice(b",\"exception_message\":");
        json::push_str(buf, &message);
        if let Some(stack) = ctx.stack(names, e.message) {
            buf.extend_from_slice(b",\"stack\":");
            json::push_str(buf, &stack);
        }
    }
    if e.trace_id != 0 {
        buf.extend_from_slice(b",\"trace_id\":");
        json::push_hex128(buf, e.trace_id);
    }
    if e.span_id != 0 {
        buf.extend_from_slice(b",\"span_id\":");
        json::push_hex64(buf, e.span_id);
    }
    if e.parent_span_id != 0 {
        buf.extend_from_slice(b",\"parent_span_id\":");
        json::push_hex64(buf, e.parent_span_id);
    }
    buf.extend_from_slice(b",\"pid\":");
    json::push_u64(buf, u64::from(e.pid));
    buf.extend_from_slice(b",\"tid\":");
    json::push_u64(buf, u64::from(e.tid));
    match e.kind {
        Kind::Req => {
            buf.extend_from_slice(b",\"bytes_in\":");
            json::push_u64(buf, e.value);
            buf.extend_from_slice(b",\"bytes_out\":");
            json::push_u64(buf, e.value2);
        }
        Kind::Db => {
            buf.extend_from_slice(b",\"rows\":");
            json::push_u64(buf, e.value);
        }
        Kind::Custom => {
            buf.extend_from_slice(b",\"value\":");
            json::push_f64(buf, f64::from_bits(e.value));
        }
        Kind::Fn => {}
    }
    if let Some(service) = ctx.service_json(e.writer) {
        buf.extend_from_slice(b",\"service\":");
        buf.extend_from_slice(service);
    }
    buf.extend_from_slice(b",\"ring_id\":");
    buf.extend_from_slice(&ctx.ring_id_json);
    buf.extend_from_slice(b",\"seq\":");
    json::push_u64(buf, e.position);
    buf.extend_from_slice(b"}\n");
}

/// The `(ring_id, seq)` at the end of a line written by [`render`], or
/// `None` for anything else (a foreign or damaged line).
pub fn parse_tail(line: &[u8]) -> Option<(u64, u64)> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let body = line.strip_suffix(b"}")?;
    const SEQ: &[u8] = b",\"seq\":";
    const RING: &[u8] = b",\"ring_id\":\"";
    let seq_at = rfind(body, SEQ)?;
    let seq = parse_u64(&body[seq_at + SEQ.len()..])?;
    let head = &body[..seq_at];
    let ring_hex = head.strip_suffix(b"\"")?;
    if ring_hex.len() < RING.len() + 16
        || &ring_hex[ring_hex.len() - 16 - RING.len()..ring_hex.len() - 16] != RING
    {
        return None;
    }
    let hex = std::str::from_utf8(&ring_hex[ring_hex.len() - 16..]).ok()?;
    let ring_id = u64::from_str_radix(hex, 16).ok()?;
    Some((ring_id, seq))
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_parses_rendered_ids_and_rejects_others() {
        let line = b"{\"ts_ns\":1,\"kind\":\"FN\",\"name\":\"x\",\"dur_ns\":2,\"error\":false,\"pid\":1,\"tid\":1,\"ring_id\":\"00000000000000ff\",\"seq\":42}\n";
        assert_eq!(parse_tail(line), Some((255, 42)));
        assert_eq!(parse_tail(b"{\"seq\":42}"), None);
        assert_eq!(parse_tail(b"garbage"), None);
        assert_eq!(parse_tail(b""), None);
        assert_eq!(
            parse_tail(b"{\"ring_id\":\"zzzzzzzzzzzzzzzz\",\"seq\":1}"),
            None
        );
    }
}
