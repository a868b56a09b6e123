//! The JSONL line: one event as one JSON object (schema in docs/jsonl.md).
//!
//! Rendered by hand into a reused buffer: names, ring id and service come
//! pre-escaped from the [`RingContext`] caches, numbers and ids written
//! straight into reserved capacity ([`Reserved`]).
//! `ring_id` and `seq` are always the last two fields, so a restarting
//! reader can find the last exported position of each ring by looking at the
//! ends of lines only.

use crate::ingest::RingContext;
use crate::support::json::{self, Reserved, HEX128_LEN, HEX64_LEN, U64_MAX_LEN};
use profilis::{Event, Kind, Method, Names, StrId};

/// Most bytes of the line's fixed text before the name: `{"ts_ns":`, a
/// number, the longest kind.
const HEAD_MAX: usize = 9 + U64_MAX_LEN + 28;
/// Most bytes between the name and the exception: method, status, duration,
/// error flag, and the `exception_type` key.
const MIDDLE_MAX: usize = 11 + 7 + 1 + 10 + U64_MAX_LEN + 10 + U64_MAX_LEN + 14 + 19;
/// Most bytes of ids, pid, tid, bytes in/out (or rows), the `service`,
/// `ring_id` and `seq` keys, a number and `}\n`.
const TAIL_MAX: usize = 12
    + HEX128_LEN
    + 11
    + HEX64_LEN
    + 18
    + HEX64_LEN
    + 7
    + U64_MAX_LEN
    + 7
    + U64_MAX_LEN
    + 12
    + U64_MAX_LEN
    + 13
    + U64_MAX_LEN
    + 11
    + 11
    + 7
    + U64_MAX_LEN
    + 2;

/// Appends one event as a JSON object and a newline.
///
/// The fixed part goes through [`Reserved`], one capacity reservation per
/// part and a budget compare per piece; exception messages, stacks and
/// custom values (rare, and of unbounded length) through the `Vec`.
pub fn render(buf: &mut Vec<u8>, ctx: &mut RingContext, names: &Names, wall_ns: u64, e: &Event) {
    {
        let name = ctx.name_json(names, e.name);
        let mut out = Reserved::new(buf, HEAD_MAX + name.len() + MIDDLE_MAX);
        out.bytes(b"{\"ts_ns\":");
        out.u64(wall_ns);
        out.bytes(match e.kind {
            Kind::Req => b",\"kind\":\"REQ\",\"name\":",
            Kind::Fn => b",\"kind\":\"FN\",\"name\":",
            Kind::Db => b",\"kind\":\"DB\",\"name\":",
            Kind::Custom => b",\"kind\":\"CUSTOM\",\"name\":",
        });
        out.bytes(name);
        if e.kind == Kind::Req {
            if e.method != Method::None {
                out.bytes(b",\"method\":\"");
                out.bytes(e.method.as_str().as_bytes());
                out.bytes(b"\"");
            }
            out.bytes(b",\"status\":");
            out.u64(u64::from(e.status));
        }
        if e.kind != Kind::Custom {
            out.bytes(b",\"dur_ns\":");
            out.u64(e.dur_ns);
        }
        out.bytes(if e.is_error() {
            b",\"error\":true"
        } else {
            b",\"error\":false"
        });
    }
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
    if e.kind == Kind::Custom {
        render_ids(&mut Reserved::new(buf, TAIL_MAX), e);
        buf.extend_from_slice(b",\"value\":");
        json::push_f64(buf, f64::from_bits(e.value));
    }
    let service = ctx.service_json(e.writer).unwrap_or_default();
    let mut out = Reserved::new(buf, TAIL_MAX + service.len() + ctx.ring_id_json.len());
    match e.kind {
        Kind::Req => {
            render_ids(&mut out, e);
            out.bytes(b",\"bytes_in\":");
            out.u64(e.value);
            out.bytes(b",\"bytes_out\":");
            out.u64(e.value2);
        }
        Kind::Db => {
            render_ids(&mut out, e);
            out.bytes(b",\"rows\":");
            out.u64(e.value);
        }
        Kind::Fn => render_ids(&mut out, e),
        Kind::Custom => {}
    }
    if !service.is_empty() {
        out.bytes(b",\"service\":");
        out.bytes(service);
    }
    out.bytes(b",\"ring_id\":");
    out.bytes(&ctx.ring_id_json);
    out.bytes(b",\"seq\":");
    out.u64(e.position);
    out.bytes(b"}\n");
}

/// Trace context, pid and tid.
#[inline(always)]
fn render_ids(out: &mut Reserved<'_>, e: &Event) {
    if e.trace_id != 0 {
        out.bytes(b",\"trace_id\":");
        out.hex128(e.trace_id);
    }
    if e.span_id != 0 {
        out.bytes(b",\"span_id\":");
        out.hex64(e.span_id);
    }
    if e.parent_span_id != 0 {
        out.bytes(b",\"parent_span_id\":");
        out.hex64(e.parent_span_id);
    }
    out.bytes(b",\"pid\":");
    out.u64(u64::from(e.pid));
    out.bytes(b",\"tid\":");
    out.u64(u64::from(e.tid));
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
