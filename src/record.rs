//! The event record: what one slot carries, and its encoding as 14 words.
//!
//! ```text
//! w0  stamp: the lane position the record was written at
//! w1  kind:u8 | flags:u8 << 8 | method:u8 << 16 | status:u16 << 32
//! w2  name:u32 | exception type:u32 << 32
//! w3  pid:u32 | tid:u32 << 32
//! w4  timestamp, CLOCK_MONOTONIC ns at the end of the measured work
//! w5  duration ns
//! w6  trace id, low 64 bits      w7  trace id, high 64 bits
//! w8  span id                    w9  parent span id
//! w10 value (DB rows, REQ bytes in, CUSTOM value as f64 bits)
//! w11 value2 (REQ bytes out)
//! w12 message ref:u32 | writer index:u16 << 32
//! w13 checksum of w0..w12
//! ```
//!
//! The word indexes are named in [`crate::layout`] (`W_STAMP` ...
//! `W_CHECKSUM`). The stamp and the checksum let the consumer reject a
//! record that a damaged file or a stray write left in a slot: such a record
//! is counted as torn, never delivered.

use crate::layout::{
    RECORD_WORDS, WRITER_SHIFT, W_CHECKSUM, W_DURATION, W_KIND, W_MSG_WRITER, W_NAMES,
    W_PARENT_SPAN, W_PID_TID, W_SPAN, W_STAMP, W_TIMESTAMP, W_TRACE_HI, W_TRACE_LO, W_VALUE,
    W_VALUE2,
};

/// What an event measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// An HTTP (or other) request: route, method, status, bytes.
    Req = 1,
    /// A function call or span.
    Fn = 2,
    /// A database query: redacted text, rows.
    Db = 3,
    /// A custom metric sample: name and value.
    Custom = 4,
}

impl Kind {
    /// Decodes a kind byte.
    pub fn from_u8(v: u8) -> Option<Kind> {
        match v {
            1 => Some(Kind::Req),
            2 => Some(Kind::Fn),
            3 => Some(Kind::Db),
            4 => Some(Kind::Custom),
            _ => None,
        }
    }

    /// Upper-case name used in output (`REQ`, `FN`, `DB`, `CUSTOM`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Req => "REQ",
            Kind::Fn => "FN",
            Kind::Db => "DB",
            Kind::Custom => "CUSTOM",
        }
    }
}

/// HTTP method of a request event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Method {
    /// Not a request, or not known.
    #[default]
    None = 0,
    /// GET
    Get = 1,
    /// POST
    Post = 2,
    /// PUT
    Put = 3,
    /// DELETE
    Delete = 4,
    /// PATCH
    Patch = 5,
    /// HEAD
    Head = 6,
    /// OPTIONS
    Options = 7,
    /// CONNECT
    Connect = 8,
    /// TRACE
    Trace = 9,
    /// Any other method.
    Other = 255,
}

impl Method {
    /// Decodes a method byte; unknown values map to `Other`.
    pub fn from_u8(v: u8) -> Method {
        match v {
            0 => Method::None,
            1 => Method::Get,
            2 => Method::Post,
            3 => Method::Put,
            4 => Method::Delete,
            5 => Method::Patch,
            6 => Method::Head,
            7 => Method::Options,
            8 => Method::Connect,
            9 => Method::Trace,
            _ => Method::Other,
        }
    }

    /// Parses a method name (case-sensitive, as HTTP defines it).
    pub fn parse(name: &str) -> Method {
        match name {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "HEAD" => Method::Head,
            "OPTIONS" => Method::Options,
            "CONNECT" => Method::Connect,
            "TRACE" => Method::Trace,
            "" => Method::None,
            _ => Method::Other,
        }
    }

    /// The method name, `""` for `None`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::None => "",
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Connect => "CONNECT",
            Method::Trace => "TRACE",
            Method::Other => "OTHER",
        }
    }
}

/// Event flag: the measured work failed.
pub const FLAG_ERROR: u8 = 1;
/// Event flag: the event belongs to a sampled trace.
pub const FLAG_SAMPLED: u8 = 2;

/// Id of an interned string; 0 means "none".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct StrId(pub u32);

impl StrId {
    /// No string.
    pub const NONE: StrId = StrId(0);
    /// The string table was full: the text could not be interned.
    pub const OVERFLOW: StrId = StrId(u32::MAX);
}

/// Reference to a message slot; 0 means "no message".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct MsgRef(pub u32);

/// A decoded event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// Ring-wide position of the event: `lane position * lanes + lane`,
    /// unique per ring (see [`ring_position`](crate::ring::ring_position)).
    pub position: u64,
    /// The lane the event was written into.
    pub lane: u16,
    /// What the event measures.
    pub kind: Kind,
    /// [`FLAG_ERROR`], [`FLAG_SAMPLED`].
    pub flags: u8,
    /// HTTP method (requests).
    pub method: Method,
    /// HTTP status (requests), 0 otherwise.
    pub status: u16,
    /// Route template, function name, redacted query or metric name.
    pub name: StrId,
    /// Exception type, when the work failed with one.
    pub exception_type: StrId,
    /// Exception message, when one was recorded.
    pub message: MsgRef,
    /// Writer process id.
    pub pid: u32,
    /// Writer thread id.
    pub tid: u32,
    /// `CLOCK_MONOTONIC` ns at the end of the measured work.
    pub ts_mono_ns: u64,
    /// Duration in ns.
    pub dur_ns: u64,
    /// W3C trace id (0 when none).
    pub trace_id: u128,
    /// Span id of this event (0 when none).
    pub span_id: u64,
    /// Parent span id (0 when none).
    pub parent_span_id: u64,
    /// DB rows, REQ bytes in, or CUSTOM value (f64 bits).
    pub value: u64,
    /// REQ bytes out.
    pub value2: u64,
    /// Writer-table index of the writer process ([`crate::layout::NO_WRITER`] if none).
    pub writer: u16,
}

impl Event {
    /// Whether the event counts as an error: the writer set [`FLAG_ERROR`]
    /// (the work failed), or it is a request answered with a 5xx status
    /// (with or without the flag). The reader's statistics and every output
    /// use this one rule.
    #[inline]
    pub fn is_error(&self) -> bool {
        self.flags & FLAG_ERROR != 0 || (self.kind == Kind::Req && self.status >= 500)
    }

    /// The custom metric value of a [`Kind::Custom`] event.
    pub fn custom_value(&self) -> f64 {
        f64::from_bits(self.value)
    }
}

/// Start of the check word ("PROFILIS"): an all-zero record does not check.
const CHECK_SEED: u64 = 0x5052_4F46_494C_4953;

/// Check word of record words 0..13: their exclusive or, with a seed. A
/// change to any single word always changes it (and an all-zero record
/// fails it), which is what the check is for: catching a record damaged in
/// the file. Torn reads and stale records are caught by the protocol itself
/// (the slot's sequence word and the stamp), so the check need not be a
/// hash; it is on every event's path, and folding is a few instructions.
#[inline]
pub fn checksum(words: &[u64; RECORD_WORDS]) -> u64 {
    let w = |i: usize| words[i];
    let a = w(0) ^ w(4) ^ w(8) ^ w(12);
    let b = w(1) ^ w(5) ^ w(9);
    let c = w(2) ^ w(6) ^ w(10);
    let d = w(3) ^ w(7) ^ w(11);
    CHECK_SEED ^ a ^ b ^ (c ^ d)
}

/// The record words of an event before it has a place: built before the
/// writer knows its lane position and thread, stamped with them at the end
/// (the check word folds words in by exclusive or, so stamping is two
/// stores, not a second pass over the record).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record([u64; RECORD_WORDS]);

impl Record {
    /// Sets the thread id and the writer-table index (the event was
    /// encoded with 0 for both).
    #[inline(always)]
    pub fn with_thread(mut self, tid: u32, writer: u16) -> Record {
        let tid = (tid as u64) << 32;
        let writer = (writer as u64) << WRITER_SHIFT;
        self.0[W_PID_TID] |= tid;
        self.0[W_MSG_WRITER] |= writer;
        self.0[W_CHECKSUM] ^= tid ^ writer;
        self
    }

    /// The words stamped with lane position `stamp` (the record was built
    /// with stamp 0).
    #[inline(always)]
    pub fn stamped(self, stamp: u64) -> [u64; RECORD_WORDS] {
        let mut w = self.0;
        w[W_STAMP] = stamp;
        w[W_CHECKSUM] ^= stamp;
        w
    }
}

impl Event {
    /// Encodes the event as record words, stamping `stamp` (the lane
    /// position) and the checksum.
    #[inline(always)]
    pub fn encode(&self, stamp: u64) -> [u64; RECORD_WORDS] {
        self.record().stamped(stamp)
    }

    /// The event's record words with stamp 0, to be stamped with
    /// [`Record::stamped`].
    #[inline(always)]
    pub fn record(&self) -> Record {
        let mut w = [0u64; RECORD_WORDS];
        w[W_KIND] = self.kind as u64
            | (self.flags as u64) << 8
            | (self.method as u64) << 16
            | (self.status as u64) << 32;
        w[W_NAMES] = self.name.0 as u64 | (self.exception_type.0 as u64) << 32;
        w[W_PID_TID] = self.pid as u64 | (self.tid as u64) << 32;
        w[W_TIMESTAMP] = self.ts_mono_ns;
        w[W_DURATION] = self.dur_ns;
        w[W_TRACE_LO] = self.trace_id as u64;
        w[W_TRACE_HI] = (self.trace_id >> 64) as u64;
        w[W_SPAN] = self.span_id;
        w[W_PARENT_SPAN] = self.parent_span_id;
        w[W_VALUE] = self.value;
        w[W_VALUE2] = self.value2;
        w[W_MSG_WRITER] = self.message.0 as u64 | (self.writer as u64) << WRITER_SHIFT;
        w[W_CHECKSUM] = checksum(&w);
        Record(w)
    }

    /// Decodes record words read from the slot of lane position `stamp`.
    /// The event's `position` is the stamp and its `lane` 0 until the
    /// caller, who knows the lane, sets them.
    pub fn decode(stamp: u64, w: &[u64; RECORD_WORDS]) -> Result<Event, Torn> {
        if w[W_CHECKSUM] != checksum(w) {
            return Err(Torn::Checksum);
        }
        if w[W_STAMP] != stamp {
            return Err(Torn::Stamp);
        }
        let kind = Kind::from_u8(w[W_KIND] as u8).ok_or(Torn::Kind)?;
        Ok(Event {
            position: stamp,
            lane: 0,
            kind,
            flags: (w[W_KIND] >> 8) as u8,
            method: Method::from_u8((w[W_KIND] >> 16) as u8),
            status: (w[W_KIND] >> 32) as u16,
            name: StrId(w[W_NAMES] as u32),
            exception_type: StrId((w[W_NAMES] >> 32) as u32),
            pid: w[W_PID_TID] as u32,
            tid: (w[W_PID_TID] >> 32) as u32,
            ts_mono_ns: w[W_TIMESTAMP],
            dur_ns: w[W_DURATION],
            trace_id: w[W_TRACE_LO] as u128 | (w[W_TRACE_HI] as u128) << 64,
            span_id: w[W_SPAN],
            parent_span_id: w[W_PARENT_SPAN],
            value: w[W_VALUE],
            value2: w[W_VALUE2],
            message: MsgRef(w[W_MSG_WRITER] as u32),
            writer: (w[W_MSG_WRITER] >> WRITER_SHIFT) as u16,
        })
    }
}

/// Why a record was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Torn {
    /// The words do not match their checksum: two writes were mixed.
    Checksum,
    /// A whole record from another position.
    Stamp,
    /// A kind byte no version of the format defines.
    Kind,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event {
            position: 0,
            lane: 0,
            kind: Kind::Req,
            flags: FLAG_ERROR,
            method: Method::Post,
            status: 503,
            name: StrId(7),
            exception_type: StrId(9),
            message: MsgRef(3),
            pid: 1234,
            tid: 5678,
            ts_mono_ns: 1_000_000,
            dur_ns: 250,
            trace_id: 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
            span_id: 42,
            parent_span_id: 41,
            value: 100,
            value2: 200,
            writer: 5,
        }
    }

    #[test]
    fn errors_are_flagged_failures_and_5xx_requests() {
        let plain = Event {
            flags: 0,
            status: 200,
            ..sample()
        };
        let with = |kind: Kind, flags: u8, status: u16| Event {
            kind,
            flags,
            status,
            ..plain
        };
        assert!(!plain.is_error());
        assert!(with(Kind::Req, 0, 500).is_error(), "a 5xx request");
        assert!(!with(Kind::Req, 0, 499).is_error());
        assert!(with(Kind::Req, FLAG_ERROR, 200).is_error(), "flagged");
        assert!(
            !with(Kind::Fn, 0, 500).is_error(),
            "only a request has an HTTP status"
        );
        assert!(with(Kind::Fn, FLAG_ERROR, 0).is_error());
    }

    #[test]
    fn encode_decode_round_trip() {
        let e = sample();
        let w = e.encode(77);
        let d = Event::decode(77, &w).unwrap();
        assert_eq!(d, Event { position: 77, ..e });
    }

    #[test]
    fn any_single_word_change_is_detected() {
        let w = sample().encode(77);
        for i in 0..RECORD_WORDS {
            for delta in [1u64, 1 << 63, 0xdead_beef, u64::MAX] {
                let mut bad = w;
                bad[i] ^= delta;
                assert!(
                    Event::decode(77, &bad).is_err(),
                    "word {i} delta {delta:#x}"
                );
            }
        }
    }

    #[test]
    fn stamp_of_another_position_is_rejected() {
        let w = sample().encode(77);
        assert_eq!(Event::decode(77 + 1024, &w), Err(Torn::Stamp));
    }

    #[test]
    fn zero_record_is_rejected() {
        assert!(Event::decode(0, &[0; RECORD_WORDS]).is_err());
    }

    #[test]
    fn mixed_records_are_detected() {
        let a = sample().encode(5);
        let b = Event {
            dur_ns: 999,
            status: 200,
            ..sample()
        }
        .encode(5);
        // Every split of a into b, both directions, differs from both originals.
        for cut in 1..RECORD_WORDS {
            let mut mix = a;
            mix[cut..].copy_from_slice(&b[cut..]);
            if mix != a && mix != b {
                assert!(Event::decode(5, &mix).is_err(), "cut {cut}");
            }
        }
    }

    #[test]
    fn method_names_round_trip() {
        for m in [
            "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE",
        ] {
            assert_eq!(Method::parse(m).as_str(), m);
            assert_eq!(Method::from_u8(Method::parse(m) as u8), Method::parse(m));
        }
        assert_eq!(Method::parse("BREW"), Method::Other);
    }
}
