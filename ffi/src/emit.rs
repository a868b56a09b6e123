//! Recording: interning names and storing messages in the ring, then
//! events, with every field ([`profilis_record`]) or one kind at a time
//! (`profilis_emit_*`), each checked before it reaches the ring.

use crate::guard::{checked, Call, Failure, Promise};
use crate::status::Status;
use crate::types::{FfiEvent, FfiSpanContext, RingHandle};
use profilis::record::{FLAG_ERROR, FLAG_SAMPLED};
use profilis::{Fields, Kind, Method, MsgRef, Ring, StrId};
use std::ffi::{c_char, c_int};

fn method_arg(method: u32) -> Result<Method, Failure> {
    let m = Method::from_u8(method.min(256) as u8);
    if method > 255 || (m == Method::Other && method != 255) {
        return Err(Failure::invalid(format!(
            "method {method} is not a PROFILIS_METHOD_* value"
        )));
    }
    Ok(m)
}

/// The body of `profilis_intern` and `profilis_message`: stores `text` in
/// the ring with `store` and writes the id or reference it gives to `out`.
fn store_text(
    call: Call<'_>,
    ring: *const RingHandle,
    text: *const c_char,
    len: usize,
    (out, what): (*mut u32, &str),
    store: impl FnOnce(&Ring, &str) -> u32,
) -> Result<Status, Failure> {
    let ring = call.ring(ring)?;
    let text = call.text(text, len, "text")?;
    if out.is_null() {
        return Err(Failure::null(what));
    }
    call.write(out, store(ring, text), what)?;
    Ok(Status::Ok)
}

/// The body of the `profilis_emit_*` functions: checks the ring and the
/// trace context, then the event's own arguments (`fields`), and records
/// it in that context.
fn emit(
    call: Call<'_>,
    ring: *const RingHandle,
    ctx: *const FfiSpanContext,
    kind: Kind,
    name: u32,
    fields: impl FnOnce() -> Result<Fields, Failure>,
) -> Result<Status, Failure> {
    let ring = call.ring(ring)?;
    let span = call.span(ctx)?;
    let fields = Fields {
        span: Some(span),
        ..fields()?
    };
    Ok(Status::from_emit(ring.record(kind, StrId(name), &fields)))
}

fn status_arg(status: u32) -> Result<u16, Failure> {
    u16::try_from(status).map_err(|_| Failure::invalid(format!("status {status} exceeds 65535")))
}

/// Interns `text[..len]` (UTF-8, cut to 1024 bytes at a character
/// boundary) in the ring's string table and writes its id to `*out_id`.
/// Intern each name once and keep the id: events carry ids, never text. A
/// full table gives `PROFILIS_STR_OVERFLOW` (counted), not an error.
///
/// # Safety
/// `ring` is an open handle; `text` is readable for `len` bytes; `out_id`
/// is writable.
#[no_mangle]
pub unsafe extern "C" fn profilis_intern(
    ring: *const RingHandle,
    text: *const c_char,
    len: usize,
    out_id: *mut u32,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        store_text(call, ring, text, len, (out_id, "out_id"), |ring, text| {
            ring.intern(text).0
        })
    })
}

/// Stores variable text such as an exception message (UTF-8, cut to 240
/// bytes) in the ring's message slots and writes a reference for
/// `profilis_event.message` to `*out_ref`. A reference of 0 means the text
/// was lost to contention (counted).
///
/// # Safety
/// `ring` is an open handle; `text` is readable for `len` bytes; `out_ref`
/// is writable.
#[no_mangle]
pub unsafe extern "C" fn profilis_message(
    ring: *const RingHandle,
    text: *const c_char,
    len: usize,
    out_ref: *mut u32,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        store_text(call, ring, text, len, (out_ref, "out_ref"), |ring, text| {
            ring.message(text).0
        })
    })
}

/// Stores an exception message (UTF-8, cut to 240 bytes) with a stack
/// trace (UTF-8, `stack_len` bytes; NULL with 0 for none), as text the
/// caller formats, outermost frame first ("most recent call last"). Past
/// the ring's bound (3600 bytes with the default 256 message slots) the
/// outer frames are cut, the first line and the innermost frames kept. The
/// message and stack take a run of message slots; a reference of 0 means
/// one of them was lost to contention (counted). Call it on the error path
/// only.
///
/// # Safety
/// `ring` is an open handle; `text` is readable for `len` bytes, `stack`
/// for `stack_len` bytes; `out_ref` is writable.
#[no_mangle]
pub unsafe extern "C" fn profilis_message_with_stack(
    ring: *const RingHandle,
    text: *const c_char,
    len: usize,
    stack: *const c_char,
    stack_len: usize,
    out_ref: *mut u32,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        let stack = call.text(stack, stack_len, "stack")?;
        store_text(call, ring, text, len, (out_ref, "out_ref"), |ring, text| {
            ring.message_with_stack(text, Some(stack).filter(|s| !s.is_empty()))
                .0
        })
    })
}

/// Records one event with every field. `ctx` is its trace context, NULL
/// for none.
///
/// # Safety
/// `ring` is an open handle; `event` points to a valid `profilis_event`;
/// `ctx` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn profilis_record(
    ring: *const RingHandle,
    event: *const FfiEvent,
    ctx: *const FfiSpanContext,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        let ring = call.ring(ring)?;
        let e = call.reference(event, "event")?;
        let span = call.span(ctx)?;
        let kind = u8::try_from(e.kind)
            .ok()
            .and_then(Kind::from_u8)
            .ok_or_else(|| {
                Failure::invalid(format!("kind {} is not a PROFILIS_KIND_* value", e.kind))
            })?;
        if e.flags & !(FLAG_ERROR as u32) != 0 {
            return Err(Failure::invalid(format!(
                "flags {:#x}: only PROFILIS_FLAG_ERROR may be set",
                e.flags
            )));
        }
        if e.reserved != 0 {
            return Err(Failure::invalid("event.reserved must be 0"));
        }
        let fields = Fields {
            flags: e.flags as u8 & !FLAG_SAMPLED,
            method: method_arg(e.method)?,
            status: status_arg(e.status)?,
            dur_ns: e.dur_ns,
            exception_type: StrId(e.exception_type),
            message: MsgRef(e.message),
            value: e.value,
            value2: e.value2,
            ts_mono_ns: e.ts_mono_ns,
            span: Some(span),
        };
        Ok(Status::from_emit(ring.record(kind, StrId(e.name), &fields)))
    })
}

/// Records a request: route template id, `PROFILIS_METHOD_*`, HTTP status
/// (500 and above flag an error), duration, bytes in and out.
///
/// # Safety
/// `ring` is an open handle; `ctx` is NULL or valid.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn profilis_emit_req(
    ring: *const RingHandle,
    route: u32,
    method: u32,
    status: u32,
    dur_ns: u64,
    bytes_in: u64,
    bytes_out: u64,
    ctx: *const FfiSpanContext,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        emit(call, ring, ctx, Kind::Req, route, || {
            let status = status_arg(status)?;
            Ok(Fields {
                flags: if status >= 500 { FLAG_ERROR } else { 0 },
                method: method_arg(method)?,
                status,
                dur_ns,
                value: bytes_in,
                value2: bytes_out,
                ..Fields::default()
            })
        })
    })
}

/// Records a function call: name id, duration, whether it failed.
///
/// # Safety
/// `ring` is an open handle; `ctx` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn profilis_emit_fn(
    ring: *const RingHandle,
    name: u32,
    dur_ns: u64,
    error: c_int,
    ctx: *const FfiSpanContext,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        emit(call, ring, ctx, Kind::Fn, name, || {
            Ok(Fields {
                flags: if error != 0 { FLAG_ERROR } else { 0 },
                dur_ns,
                ..Fields::default()
            })
        })
    })
}

/// Records a database query: id of its *redacted* text (see
/// [`profilis_redact_sql`](crate::profilis_redact_sql)), duration, rows.
///
/// # Safety
/// `ring` is an open handle; `ctx` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn profilis_emit_db(
    ring: *const RingHandle,
    query: u32,
    dur_ns: u64,
    rows: u64,
    ctx: *const FfiSpanContext,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        emit(call, ring, ctx, Kind::Db, query, || {
            Ok(Fields {
                dur_ns,
                value: rows,
                ..Fields::default()
            })
        })
    })
}

/// Records a custom metric sample.
///
/// # Safety
/// `ring` is an open handle; `ctx` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn profilis_emit_custom(
    ring: *const RingHandle,
    name: u32,
    value: f64,
    ctx: *const FfiSpanContext,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        emit(call, ring, ctx, Kind::Custom, name, || {
            Ok(Fields {
                value: value.to_bits(),
                ..Fields::default()
            })
        })
    })
}
