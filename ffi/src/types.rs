//! The types the header declares, each `#[repr(C)]` under its C name,
//! and the opaque ring handle: everything that crosses the boundary by
//! value or by pointer, laid out as C sees it. `tests/c_abi.rs` checks
//! every size, alignment and field offset against the C compiler's.

use profilis::context::SpanContext;
use profilis::Ring;
use std::ffi::c_char;

/// `profilis_span_context`: where an event sits in a trace. All zero means
/// no trace.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FfiSpanContext {
    /// High 64 bits of the 128-bit W3C trace id.
    pub trace_id_high: u64,
    /// Low 64 bits of the trace id.
    pub trace_id_low: u64,
    /// Id of the current span (0: none).
    pub span_id: u64,
    /// Id of the parent span (0: a root span).
    pub parent_span_id: u64,
    /// Non-zero when the trace is sampled.
    pub sampled: u8,
}

impl From<SpanContext> for FfiSpanContext {
    fn from(c: SpanContext) -> Self {
        FfiSpanContext {
            trace_id_high: (c.trace_id >> 64) as u64,
            trace_id_low: c.trace_id as u64,
            span_id: c.span_id,
            parent_span_id: c.parent_span_id,
            sampled: c.sampled as u8,
        }
    }
}

impl From<&FfiSpanContext> for SpanContext {
    fn from(c: &FfiSpanContext) -> Self {
        SpanContext {
            trace_id: (c.trace_id_high as u128) << 64 | c.trace_id_low as u128,
            span_id: c.span_id,
            parent_span_id: c.parent_span_id,
            sampled: c.sampled != 0,
        }
    }
}

/// `profilis_span`: a started span. The caller keeps it and passes it to
/// [`profilis_span_end`](crate::profilis_span_end); events inside it pass
/// `&span.context`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FfiSpan {
    /// The span's own context: its trace, its id, its parent.
    pub context: FfiSpanContext,
    /// `CLOCK_MONOTONIC` ns when it began.
    pub start_ns: u64,
    /// Interned name, recorded as the FN event's name.
    pub name: u32,
    /// Zero.
    pub reserved: u32,
}

/// `profilis_event`: every field of an event, for
/// [`profilis_record`](crate::profilis_record).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FfiEvent {
    /// Duration in ns.
    pub dur_ns: u64,
    /// `CLOCK_MONOTONIC` ns at the end of the work; 0 means now.
    pub ts_mono_ns: u64,
    /// DB rows, REQ bytes in, or CUSTOM value as the bits of a double.
    pub value: u64,
    /// REQ bytes out.
    pub value2: u64,
    /// `PROFILIS_KIND_*`.
    pub kind: u32,
    /// `PROFILIS_FLAG_ERROR` or 0.
    pub flags: u32,
    /// `PROFILIS_METHOD_*` (requests), 0 otherwise.
    pub method: u32,
    /// HTTP status (requests), at most 65535.
    pub status: u32,
    /// Interned name: route template, function, redacted query, metric.
    pub name: u32,
    /// Interned exception type, 0 for none.
    pub exception_type: u32,
    /// Message reference from
    /// [`profilis_message`](crate::profilis_message), 0 for none.
    pub message: u32,
    /// Zero.
    pub reserved: u32,
}

/// `profilis_counters`: the ring's counters as writers see them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FfiCounters {
    /// Emit attempts by every writer: events written or begun plus
    /// refusals.
    pub claimed: u64,
    /// Events lost to a full ring (refused plus overwritten).
    pub dropped: u64,
    /// Part of `dropped`: refused because the writer's lane was full (or
    /// no lane could be had).
    pub dropped_full: u64,
    /// Part of `dropped`: overwritten before they were read.
    pub overwritten: u64,
    /// Delivered to the consumer, as of its last commit.
    pub received: u64,
    /// Events whose writer died between the first and the last store.
    pub abandoned: u64,
    /// Records rejected by validation.
    pub torn: u64,
    /// Written or begun, not yet consumed.
    pub in_flight: u64,
    /// Events this process could not place (ring full).
    pub process_dropped: u64,
    /// Interning requests that got the overflow id (string table full).
    pub strings_overflow: u64,
    /// Messages lost to contention for a message slot.
    pub messages_lost: u64,
    /// Message texts the consumer found overwritten by newer messages
    /// before it read them.
    pub messages_unread: u64,
    /// Name ids the consumer could not resolve to text.
    pub names_unresolved: u64,
    /// Lanes the consumer found holding impossible positions and reset.
    pub repairs: u64,
}

/// `profilis_open_options`: how to create a ring that does not exist yet.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FfiOpenOptions {
    /// Event slots, a power of two; 0 for the default (262144, or
    /// `PROFILIS_CAPACITY`).
    pub capacity: u64,
    /// `PROFILIS_POLICY_DROP_NEWEST` (0) or `PROFILIS_POLICY_OVERWRITE_OLDEST` (1).
    pub policy: u32,
    /// Zero.
    pub reserved: u32,
    /// Service name of this process (UTF-8), NULL for none.
    pub service: *const c_char,
    /// Length of `service` in bytes.
    pub service_len: usize,
}

pub(crate) const HANDLE_MAGIC: u64 = u64::from_le_bytes(*b"PFLSRING");

/// `profilis_ring`: an open ring, opaque to C.
pub struct RingHandle {
    pub(crate) magic: u64,
    pub(crate) ring: Ring,
}
