//! Hand-written JSON output into reusable byte buffers: string escaping and
//! number formatting for the JSONL hot path, where building a
//! `serde_json::Value` per event would cost more than everything else.

/// Hex digits used for ids.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `text` as a JSON string literal (with quotes). Escapes `"`, `\`
/// and every control character, so any `&str` gives valid JSON.
pub fn push_str(buf: &mut Vec<u8>, text: &str) {
    buf.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f | 0x7f => {
                buf.extend_from_slice(&bytes[start..i]);
                buf.extend_from_slice(b"\\u00");
                buf.push(HEX[(b >> 4) as usize]);
                buf.push(HEX[(b & 15) as usize]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        buf.extend_from_slice(escape);
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

/// `text` as a JSON string literal.
pub fn quoted(text: &str) -> Box<[u8]> {
    let mut buf = Vec::with_capacity(text.len() + 2);
    push_str(&mut buf, text);
    buf.into_boxed_slice()
}

/// Appends an unsigned integer.
#[inline]
pub fn push_u64(buf: &mut Vec<u8>, value: u64) {
    let mut b = itoa::Buffer::new();
    buf.extend_from_slice(b.format(value).as_bytes());
}

/// Appends a float; NaN and infinities (which JSON cannot express) as `null`.
pub fn push_f64(buf: &mut Vec<u8>, value: f64) {
    if value.is_finite() {
        use std::io::Write;
        // Both forms print the shortest text that reads back as the same
        // value; the exponent form keeps huge and tiny values short.
        let magnitude = value.abs();
        if magnitude == 0.0 || (1e-6..1e16).contains(&magnitude) {
            let _ = write!(buf, "{value}");
        } else {
            let _ = write!(buf, "{value:e}");
        }
    } else {
        buf.extend_from_slice(b"null");
    }
}

/// Appends `value` as `"<16 hex digits>"`.
#[inline]
pub fn push_hex64(buf: &mut Vec<u8>, value: u64) {
    buf.push(b'"');
    push_hex_digits(buf, value);
    buf.push(b'"');
}

/// Appends `value` as `"<32 hex digits>"`.
#[inline]
pub fn push_hex128(buf: &mut Vec<u8>, value: u128) {
    buf.push(b'"');
    push_hex_digits(buf, (value >> 64) as u64);
    push_hex_digits(buf, value as u64);
    buf.push(b'"');
}

/// Every byte as its two lower-case hex digits: one lookup per byte
/// instead of one per digit (ids are a quarter of a JSONL line).
const HEX_PAIRS: [[u8; 2]; 256] = {
    let mut table = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = [HEX[i >> 4], HEX[i & 15]];
        i += 1;
    }
    table
};

#[inline]
fn push_hex_digits(buf: &mut Vec<u8>, value: u64) {
    let mut out = [0u8; 16];
    for (pair, byte) in out.chunks_exact_mut(2).zip(value.to_be_bytes()) {
        pair.copy_from_slice(&HEX_PAIRS[byte as usize]);
    }
    buf.extend_from_slice(&out);
}

/// `value` as 16 lower-case hex digits.
pub fn hex64(value: u64) -> String {
    format!("{value:016x}")
}

/// `value` as 32 lower-case hex digits.
pub fn hex128(value: u128) -> String {
    format!("{value:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) {
        let mut buf = Vec::new();
        push_str(&mut buf, text);
        let parsed: String = serde_json::from_slice(&buf)
            .unwrap_or_else(|e| panic!("{:?} gave invalid JSON {:?}: {e}", text, buf));
        assert_eq!(parsed, text);
    }

    #[test]
    fn hostile_strings_round_trip() {
        round_trip("");
        round_trip("plain /api/users/{id}");
        round_trip("quote \" backslash \\ slash /");
        round_trip("\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}");
        round_trip("unicode é ✓ 🦀 \u{2028}\u{2029} \u{fffd}");
        round_trip("\\\"\\\"");
        round_trip("\"");
        round_trip("ends with backslash \\");
        let all: String = (0u32..0x300).filter_map(char::from_u32).collect();
        round_trip(&all);
        let lossy = String::from_utf8_lossy(b"bad \xff\xfe utf8 \xc3");
        round_trip(&lossy);
    }

    #[test]
    fn numbers_and_ids() {
        let mut buf = Vec::new();
        push_u64(&mut buf, u64::MAX);
        assert_eq!(buf, b"18446744073709551615");
        for v in [
            0.0,
            -0.0,
            1.5,
            -2.25e-300,
            1e300,
            f64::MIN_POSITIVE,
            123456.789,
        ] {
            buf.clear();
            push_f64(&mut buf, v);
            let text = std::str::from_utf8(&buf).unwrap();
            assert!(
                serde_json::from_str::<f64>(text).is_ok(),
                "{text} is not JSON"
            );
            assert_eq!(text.parse::<f64>().unwrap(), v, "{text}");
        }
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            buf.clear();
            push_f64(&mut buf, v);
            assert_eq!(buf, b"null");
        }
        buf.clear();
        push_hex64(&mut buf, 0x0123_4567_89ab_cdef);
        assert_eq!(buf, b"\"0123456789abcdef\"");
        buf.clear();
        push_hex128(&mut buf, 0xfedc_ba98_7654_3210_0123_4567_89ab_cdef);
        assert_eq!(buf, b"\"fedcba98765432100123456789abcdef\"");
        assert_eq!(hex64(1), "0000000000000001");
        assert_eq!(hex128(1).len(), 32);
    }
}
