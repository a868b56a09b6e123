//! The C ABI of the Profilis writer, declared in `include/profilis.h`.
//!
//! Any language that can call C writes into the same ring files as Rust
//! code: open a ring, intern names once, record REQ/FN/DB/CUSTOM events
//! with an explicit trace context, time spans, read the ring's counters,
//! redact SQL and messages and add redaction patterns. Every function checks its pointers and lengths, checks that
//! text is UTF-8, returns a [`Status`] and never lets a panic unwind into the
//! caller; the message of the last failure on a thread is kept for
//! [`profilis_last_error`].
//!
//! The trace context is explicit: C has no task-local storage the library
//! could see, so every emit takes a `profilis_span_context` (or NULL for
//! none) and a span is a plain struct the caller keeps and passes back.
//!
//! The modules, by role: `types` is what crosses the boundary and `status`
//! the status codes and the last error; `guard` is the discipline every
//! exported function runs its body under; `ring` opens, closes and counts,
//! `emit` interns and records, `span` begins and ends spans and reads and
//! writes `traceparent`, `sql` redacts SQL, `redact` redacts messages and
//! sets the redaction rules, and `bridge` holds what `sql` and `span` take
//! from `profilis`. Imports go downward only: the exported
//! functions use `guard`, which uses `types` and `status`.

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod bridge;
mod emit;
mod guard;
mod redact;
mod ring;
mod span;
mod sql;
mod status;
mod types;

pub use bridge::{format_traceparent, parse_traceparent, redact_sql, TRACEPARENT_LEN};
pub use emit::{
    profilis_emit_custom, profilis_emit_db, profilis_emit_fn, profilis_emit_req, profilis_intern,
    profilis_message, profilis_record,
};
pub use redact::{
    profilis_redact_add_message_pattern, profilis_redact_add_sql_pattern,
    profilis_redact_clear_patterns, profilis_redact_message, profilis_redact_set_message_rules,
};
pub use ring::{
    counters, profilis_close, profilis_open, profilis_open_with, profilis_read_counters,
};
pub use span::{
    profilis_span_begin, profilis_span_end, profilis_traceparent_format, profilis_traceparent_parse,
};
pub use sql::profilis_redact_sql;
pub use status::{profilis_last_error, profilis_status_str, Status};
pub use types::{FfiCounters, FfiEvent, FfiOpenOptions, FfiSpan, FfiSpanContext, RingHandle};

/// Version of this ABI; `PROFILIS_ABI_VERSION` in the header.
pub const ABI_VERSION: u32 = 3;

/// Version of the ABI this library implements (`PROFILIS_ABI_VERSION`).
#[no_mangle]
pub extern "C" fn profilis_abi_version() -> u32 {
    ABI_VERSION
}

/// `CLOCK_MONOTONIC` in ns: the clock event timestamps and span starts use.
#[no_mangle]
pub extern "C" fn profilis_mono_ns() -> u64 {
    profilis::clock::mono_ns()
}
