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
    hex_digits(&mut out, value);
    buf.extend_from_slice(&out);
}

/// Every number below 100 as its two decimal digits.
const DEC_PAIRS: [[u8; 2]; 100] = {
    let mut table = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        table[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    table
};

/// Most bytes [`Reserved::u64`] writes.
pub const U64_MAX_LEN: usize = 20;
/// Most bytes [`Reserved::hex64`] writes (quotes included).
pub const HEX64_LEN: usize = 18;
/// Most bytes [`Reserved::hex128`] writes (quotes included).
pub const HEX128_LEN: usize = 34;

/// Writes into capacity reserved up front, without `Vec`'s capacity check
/// and growth path per piece: the JSONL line's fixed part is a dozen short
/// pieces, and `Vec::extend_from_slice` on each cost more than copying it.
///
/// [`Reserved::new`] reserves `bound` bytes; every write then debits its
/// length from that budget, and a write past it panics (one compare per
/// piece, so a wrong bound is a panic, never a write out of bounds). The
/// bytes become part of the `Vec` when the writer is dropped.
pub struct Reserved<'a> {
    buf: &'a mut Vec<u8>,
    /// Where the next byte goes, inside the reserved capacity.
    at: *mut u8,
    /// Bytes of the budget left after `at`.
    left: usize,
    /// The budget reserved.
    bound: usize,
}

impl<'a> Reserved<'a> {
    /// Reserves room for `bound` more bytes in `buf`.
    #[inline]
    pub fn new(buf: &'a mut Vec<u8>, bound: usize) -> Reserved<'a> {
        buf.reserve(bound);
        let len = buf.len();
        // SAFETY: `len + bound <= capacity` after `reserve`, so the pointer
        // stays inside the allocation (or one past its end).
        let at = unsafe { buf.as_mut_ptr().add(len) };
        Reserved {
            buf,
            at,
            left: bound,
            bound,
        }
    }

    /// A pointer to room for `n` more bytes, checked against the budget.
    #[inline(always)]
    fn room(&mut self, n: usize) -> *mut u8 {
        assert!(n <= self.left, "JSON writer past its reserved bound");
        self.at
    }

    /// Counts `n` bytes written at [`room`](Self::room)'s pointer.
    #[inline(always)]
    fn advance(&mut self, n: usize) {
        debug_assert!(n <= self.left);
        // SAFETY: `n` is at most what `room` checked against `left`, so
        // `at + n` stays within the reserved capacity.
        self.at = unsafe { self.at.add(n) };
        self.left -= n;
    }

    /// Appends raw bytes.
    #[inline(always)]
    pub fn bytes(&mut self, bytes: &[u8]) {
        let dst = self.room(bytes.len());
        // SAFETY: `room` checked that `bytes.len()` bytes fit in the
        // reserved capacity at `dst`; `bytes` is not part of the Vec's
        // spare capacity (a shared borrow cannot alias `&mut Vec`).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()) };
        self.advance(bytes.len());
    }

    /// Appends an unsigned integer in decimal (the same text as `itoa`):
    /// four digits per division, formatted right-aligned on the stack and
    /// copied as a fixed 20 bytes (no length-dependent `memcpy` call); the
    /// bytes past the number's end are spare capacity, overwritten next.
    #[inline]
    pub fn u64(&mut self, value: u64) {
        let dst = self.room(U64_MAX_LEN);
        let mut digits = [0u8; 2 * U64_MAX_LEN];
        let end = digits.as_mut_ptr().wrapping_add(U64_MAX_LEN);
        let mut at = end;
        let mut v = value;
        // SAFETY: for every write below: a u64 has at most 20 digits, so `at`
        // moves from index 20 of the 40-byte `digits` down to index 0 at
        // the lowest, and each write lands in `digits[at..at + 4]` or less.
        unsafe {
            while v >= 10_000 {
                let rem = (v % 10_000) as usize;
                v /= 10_000;
                at = at.sub(4);
                at.cast::<[u8; 2]>().write_unaligned(DEC_PAIRS[rem / 100]);
                at.add(2)
                    .cast::<[u8; 2]>()
                    .write_unaligned(DEC_PAIRS[rem % 100]);
            }
            let mut v = v as usize;
            if v >= 100 {
                at = at.sub(2);
                at.cast::<[u8; 2]>().write_unaligned(DEC_PAIRS[v % 100]);
                v /= 100;
            }
            if v >= 10 {
                at = at.sub(2);
                at.cast::<[u8; 2]>().write_unaligned(DEC_PAIRS[v]);
            } else {
                at = at.sub(1);
                at.write(b'0' + v as u8);
            }
            // SAFETY: `room` checked that `U64_MAX_LEN` bytes fit at `dst`;
            // `at + 20` is within `digits` (`at` is at index 0 to 19), a
            // stack array, not part of the Vec.
            std::ptr::copy_nonoverlapping(at, dst, U64_MAX_LEN);
            self.advance(end.offset_from(at) as usize);
        }
    }

    /// Appends `value` as `"<16 hex digits>"`.
    #[inline]
    pub fn hex64(&mut self, value: u64) {
        let mut out = [b'"'; HEX64_LEN];
        hex_digits(&mut out[1..17], value);
        self.bytes(&out);
    }

    /// Appends `value` as `"<32 hex digits>"`.
    #[inline]
    pub fn hex128(&mut self, value: u128) {
        let mut out = [b'"'; HEX128_LEN];
        hex_digits(&mut out[1..17], (value >> 64) as u64);
        hex_digits(&mut out[17..33], value as u64);
        self.bytes(&out);
    }
}

impl Drop for Reserved<'_> {
    #[inline]
    fn drop(&mut self) {
        let len = self.buf.len() + (self.bound - self.left);
        // SAFETY: the `bound - left` bytes after the old length were written
        // by `bytes` and `u64` (each checked to fit in the reserved
        // capacity), so they are initialised and within capacity.
        unsafe { self.buf.set_len(len) };
    }
}

#[inline]
fn hex_digits(out: &mut [u8], value: u64) {
    for (pair, byte) in out.chunks_exact_mut(2).zip(value.to_be_bytes()) {
        pair.copy_from_slice(&HEX_PAIRS[byte as usize]);
    }
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
    fn reserved_writes_what_the_vec_paths_write() {
        let mut values = vec![0, 1, 9, 10, 99, 100, 101, u64::MAX, u64::MAX - 1];
        let mut p: u64 = 1;
        while let Some(next) = p.checked_mul(10) {
            values.extend([p - 1, p, p + 1, next - 1]);
            p = next;
        }
        let mut expected = Vec::new();
        let mut buf = b"prefix".to_vec();
        for &v in &values {
            expected.extend_from_slice(v.to_string().as_bytes());
            expected.push(b',');
            let mut out = Reserved::new(&mut buf, U64_MAX_LEN + 1);
            out.u64(v);
            out.bytes(b",");
        }
        assert_eq!(&buf[..6], b"prefix");
        assert_eq!(buf[6..], expected[..]);
        let mut via_vec = Vec::new();
        push_hex64(&mut via_vec, 0x0123_4567_89ab_cdef);
        push_hex128(&mut via_vec, 0xfedc_ba98_7654_3210_0123_4567_89ab_cdef);
        let mut reserved = Vec::new();
        let mut out = Reserved::new(&mut reserved, HEX64_LEN + HEX128_LEN);
        out.hex64(0x0123_4567_89ab_cdef);
        out.hex128(0xfedc_ba98_7654_3210_0123_4567_89ab_cdef);
        drop(out);
        assert_eq!(reserved, via_vec);
    }

    #[test]
    #[should_panic(expected = "past its reserved bound")]
    fn reserved_refuses_to_write_past_its_bound() {
        let mut buf = Vec::with_capacity(64);
        let mut out = Reserved::new(&mut buf, 4);
        out.bytes(b"1234");
        out.u64(5);
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
