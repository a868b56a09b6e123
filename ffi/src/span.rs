//! Spans and trace context: beginning and ending a span, and reading and
//! writing the W3C `traceparent` header that carries a trace across
//! processes.

use crate::bridge;
use crate::guard::{checked, Failure, Promise};
use crate::status::Status;
use crate::types::{FfiSpan, FfiSpanContext, RingHandle};
use profilis::context::SpanContext;
use profilis::record::FLAG_ERROR;
use profilis::{Fields, Kind, StrId};
use std::ffi::{c_char, c_int};

/// Begins a span named `name`: a child of `parent` (same trace, `parent`'s
/// span as its parent), or the root of a new sampled trace when `parent`
/// is NULL or has no trace. Writes the span to `*out`; pass
/// `&out->context` to events inside it and `out` to [`profilis_span_end`].
///
/// # Safety
/// `parent` is NULL or valid; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn profilis_span_begin(
    name: u32,
    parent: *const FfiSpanContext,
    out: *mut FfiSpan,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        let parent = call.span(parent)?;
        let span = FfiSpan {
            context: parent.child().into(),
            start_ns: profilis::clock::mono_ns(),
            name,
            reserved: 0,
        };
        call.write(out, span, "out")?;
        Ok(Status::Ok)
    })
}

/// Ends a span: records an FN event with its name, its context and the
/// time since [`profilis_span_begin`]; `error` non-zero flags a failure.
///
/// # Safety
/// `ring` is an open handle; `span` points to a span from
/// [`profilis_span_begin`].
#[no_mangle]
pub unsafe extern "C" fn profilis_span_end(
    ring: *const RingHandle,
    span: *const FfiSpan,
    error: c_int,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        let ring = call.ring(ring)?;
        let span = call.reference(span, "span")?;
        let end = profilis::clock::mono_ns();
        let fields = Fields {
            flags: if error != 0 { FLAG_ERROR } else { 0 },
            dur_ns: end.saturating_sub(span.start_ns),
            ts_mono_ns: end,
            span: Some(SpanContext::from(&span.context)),
            ..Fields::default()
        };
        Ok(Status::from_emit(ring.record(
            Kind::Fn,
            StrId(span.name),
            &fields,
        )))
    })
}

/// Parses a W3C `traceparent` header value (`text[..len]`) into the
/// context of the remote parent span (`span_id` = its parent id). Continue
/// the trace with [`profilis_span_begin`] passing it as the parent.
///
/// # Safety
/// `text` is readable for `len` bytes; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn profilis_traceparent_parse(
    text: *const c_char,
    len: usize,
    out: *mut FfiSpanContext,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        let bytes = call.bytes(text, len, "text")?;
        let ctx = bridge::parse_traceparent(bytes)
            .map_err(|e| Failure::new(Status::ErrTraceparent, e))?;
        call.write(out, FfiSpanContext::from(ctx), "out")?;
        Ok(Status::Ok)
    })
}

/// Writes `ctx` as a version-00 `traceparent` value (55 bytes, plus a NUL
/// when `out_cap` is at least 56) for an outgoing request.
///
/// # Safety
/// `ctx` is valid; a non-NULL `out` is writable for `out_cap` bytes; a
/// non-NULL `out_len` is writable.
#[no_mangle]
pub unsafe extern "C" fn profilis_traceparent_format(
    ctx: *const FfiSpanContext,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        let ctx = SpanContext::from(call.reference(ctx, "ctx")?);
        if ctx.trace_id == 0 || ctx.span_id == 0 {
            return Err(Failure::invalid(
                "ctx has no trace id or span id; a traceparent needs both",
            ));
        }
        let header = bridge::format_traceparent(&ctx);
        call.copy_out(header.as_bytes(), out, out_cap, out_len)
    })
}
