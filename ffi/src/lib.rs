//! The C ABI of the Profilis writer, declared in `include/profilis.h`.
//!
//! Any language that can call C writes into the same ring files as Rust
//! code: open a ring, intern names once, record REQ/FN/DB/CUSTOM events
//! with an explicit trace context, time spans, read the ring's counters,
//! redact SQL. Every function checks its pointers and lengths, checks that
//! text is UTF-8, returns a [`Status`] and never lets a panic unwind into the
//! caller; the message of the last failure on a thread is kept for
//! [`profilis_last_error`].
//!
//! The trace context is explicit: C has no task-local storage the library
//! could see, so every emit takes a `profilis_span_context` (or NULL for
//! none) and a span is a plain struct the caller keeps and passes back.

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod bridge;
mod guard;

pub use bridge::{format_traceparent, parse_traceparent, redact_sql, TRACEPARENT_LEN};

use guard::{checked, Call, Failure, Promise};
use profilis::context::SpanContext;
use profilis::record::{FLAG_ERROR, FLAG_SAMPLED};
use profilis::{
    Emit, Fields, FullPolicy, Kind, Method, MsgRef, OpenError, Ring, RingOptions, StrId,
};
use std::ffi::{c_char, c_int};

/// Version of this ABI; `PROFILIS_ABI_VERSION` in the header.
pub const ABI_VERSION: u32 = 2;

/// Result of every fallible function (`profilis_status` in C). Non-negative
/// values are outcomes of a call that was carried out; negative values are
/// errors, with a message from [`profilis_last_error`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Done.
    Ok = 0,
    /// The ring was full: the event was not recorded (counted as dropped).
    Dropped = 1,
    /// A required pointer was NULL.
    ErrNull = -1,
    /// Text was not valid UTF-8.
    ErrUtf8 = -2,
    /// An argument was out of range or a handle was not a ring.
    ErrInvalid = -3,
    /// The ring file could not be created or opened.
    ErrOpen = -4,
    /// The output buffer is too small; the needed length was reported.
    ErrBufferTooSmall = -5,
    /// A `traceparent` value was malformed.
    ErrTraceparent = -6,
    /// An internal error was caught at the boundary.
    ErrPanic = -7,
}

impl Status {
    fn from_emit(emit: Emit) -> Status {
        match emit {
            Emit::Written | Emit::Disabled => Status::Ok,
            Emit::Dropped => Status::Dropped,
        }
    }

    fn describe(code: c_int) -> &'static str {
        match code {
            0 => "ok\0",
            1 => "dropped: the ring was full\0",
            -1 => "a required pointer was NULL\0",
            -2 => "text is not valid UTF-8\0",
            -3 => "invalid argument\0",
            -4 => "the ring file could not be opened\0",
            -5 => "output buffer too small\0",
            -6 => "malformed traceparent\0",
            -7 => "internal error\0",
            _ => "unknown status\0",
        }
    }
}

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
/// [`profilis_span_end`]; events inside it pass `&span.context`.
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

/// `profilis_event`: every field of an event, for [`profilis_record`].
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
    /// Message reference from [`profilis_message`], 0 for none.
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

pub(crate) const HANDLE_MAGIC: u64 = u64::from_le_bytes(*b"PFLSRING");

/// `profilis_ring`: an open ring, opaque to C.
pub struct RingHandle {
    magic: u64,
    ring: Ring,
}

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

/// Version of the ABI this library implements (`PROFILIS_ABI_VERSION`).
#[no_mangle]
pub extern "C" fn profilis_abi_version() -> u32 {
    ABI_VERSION
}

/// A static, NUL-terminated description of a status code.
#[no_mangle]
pub extern "C" fn profilis_status_str(status: c_int) -> *const c_char {
    Status::describe(status).as_ptr().cast()
}

/// Copies this thread's last error message into `out` (NUL-terminated,
/// truncated to `out_cap - 1` bytes) and returns its full length without
/// the NUL. `out` may be NULL (with any `out_cap`) to ask for the length.
///
/// # Safety
/// A non-NULL `out` must be writable for `out_cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn profilis_last_error(out: *mut c_char, out_cap: usize) -> usize {
    let result = std::panic::catch_unwind(|| {
        let message = guard::last_error();
        if !out.is_null() && out_cap > 0 {
            let n = message.len().min(out_cap - 1);
            // SAFETY: `out` is writable for `out_cap > n` bytes and does not
            // overlap the copied message.
            unsafe {
                std::ptr::copy_nonoverlapping(message.as_ptr(), out.cast::<u8>(), n);
                *out.add(n) = 0;
            }
        }
        message.len()
    });
    result.unwrap_or(0)
}

/// `CLOCK_MONOTONIC` in ns: the clock event timestamps and span starts use.
#[no_mangle]
pub extern "C" fn profilis_mono_ns() -> u64 {
    profilis::clock::mono_ns()
}

/// `profilis_open_options`: how to create a ring that does not exist yet.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FfiOpenOptions {
    /// Event slots, a power of two; 0 for the default (65536).
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

/// Opens the ring file at `path[..path_len]`, creating it with `capacity`
/// slots (0: the default) if it does not exist. A NULL or empty path means
/// the default ring (`PROFILIS_RING`, or `/dev/shm/profilis-<uid>.ring`).
/// On success `*out` holds a handle for [`profilis_close`].
///
/// # Safety
/// `path` is readable for `path_len` bytes (or NULL with length 0); `out`
/// is writable.
#[no_mangle]
pub unsafe extern "C" fn profilis_open(
    path: *const c_char,
    path_len: usize,
    capacity: u64,
    out: *mut *mut RingHandle,
) -> Status {
    let options = FfiOpenOptions {
        capacity,
        policy: 0,
        reserved: 0,
        service: std::ptr::null(),
        service_len: 0,
    };
    // SAFETY: `profilis_open_with` asks what this function does, and
    // `options` is a valid local.
    unsafe { profilis_open_with(path, path_len, &options, out) }
}

/// Like [`profilis_open`], with every creation option. `options` may be
/// NULL for the defaults.
///
/// # Safety
/// As for [`profilis_open`]; a non-NULL `options` points to a valid
/// `profilis_open_options` whose `service` is readable for `service_len`.
#[no_mangle]
pub unsafe extern "C" fn profilis_open_with(
    path: *const c_char,
    path_len: usize,
    options: *const FfiOpenOptions,
    out: *mut *mut RingHandle,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let path = call.text(path, path_len, "path")?;
        let options = call.optional(options, "options")?;
        let mut ring_options =
            RingOptions::from_env().map_err(|e| Failure::invalid(e.to_string()))?;
        if let Some(o) = options {
            if o.capacity != 0 {
                ring_options.capacity = o.capacity;
            }
            ring_options.policy = match o.policy {
                0 => FullPolicy::DropNewest,
                1 => FullPolicy::OverwriteOldest,
                p => {
                    return Err(Failure::invalid(format!(
                        "policy {p} is not a PROFILIS_POLICY_* value"
                    )))
                }
            };
            if o.reserved != 0 {
                return Err(Failure::invalid("options.reserved must be 0"));
            }
            let service = call.text(o.service, o.service_len, "options.service")?;
            if !service.is_empty() {
                ring_options.service = Some(service.to_owned());
            }
        }
        let path = if path.is_empty() {
            profilis::default_ring_path()
        } else {
            path.into()
        };
        let ring = Ring::create_or_open(&path, ring_options).map_err(|e| match e {
            OpenError::InvalidOptions(_) => Failure::invalid(e.to_string()),
            e => Failure::new(Status::ErrOpen, e.report()),
        })?;
        let handle = Box::into_raw(Box::new(RingHandle {
            magic: HANDLE_MAGIC,
            ring,
        }));
        call.write(out, handle, "out").inspect_err(|_| {
            // SAFETY: `handle` came from `Box::into_raw` just above and was
            // not handed out.
            drop(unsafe { Box::from_raw(handle) });
        })?;
        Ok(Status::Ok)
    })
}

/// Closes a handle from [`profilis_open`]; NULL is accepted and ignored.
/// Every other call using the handle must have returned first; using it
/// afterwards is undefined behaviour. Events already recorded stay in the
/// ring file.
///
/// # Safety
/// `ring` is NULL or an open handle not used by any other thread.
#[no_mangle]
pub unsafe extern "C" fn profilis_close(ring: *mut RingHandle) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        if ring.is_null() {
            return Ok(Status::Ok);
        }
        call.ring(ring)?;
        // SAFETY: an open handle (magic and alignment checked) was made by
        // `Box::into_raw` in `profilis_open_with`; the caller gives up its
        // last use.
        let mut handle = unsafe { Box::from_raw(ring) };
        handle.magic = 0;
        drop(handle);
        Ok(Status::Ok)
    })
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
/// [`profilis_redact_sql`]), duration, rows.
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

/// Reads the ring's counters into `*out`: a consistent snapshot, for which
/// `received + dropped + abandoned + torn + in_flight == claimed`. The
/// consumer-side counts (received, abandoned, torn, overwritten and the
/// unread texts) are as of the consumer's last commit. Returns
/// `PROFILIS_ERR_INVALID`, writing nothing, in the unlikely case that the
/// consumer's commits kept moving its state for the whole of a bounded
/// number of retries.
///
/// # Safety
/// `ring` is an open handle; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn profilis_read_counters(
    ring: *const RingHandle,
    out: *mut FfiCounters,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        let ring = call.ring(ring)?;
        let c = counters(ring)
            .ok_or_else(|| Failure::invalid("the consumer state kept changing; try again"))?;
        call.write(out, c, "out")?;
        Ok(Status::Ok)
    })
}

/// The counters of `ring` as its writers see them; `None` when the
/// consumer's commits kept moving its state for the whole of a bounded
/// number of retries.
pub fn counters(ring: &Ring) -> Option<FfiCounters> {
    use std::sync::atomic::Ordering::Relaxed;
    let view = ring.view();
    let c = ring.counters()?;
    let pid = std::process::id() as u64;
    let process_dropped = view
        .writers
        .iter()
        .filter(|w| w.pid.load(Relaxed) == pid)
        .map(|w| w.dropped.load(Relaxed))
        .sum();
    Some(FfiCounters {
        claimed: c.claimed,
        dropped: c.dropped,
        dropped_full: c.dropped_full,
        overwritten: c.overwritten,
        received: c.received,
        abandoned: c.abandoned,
        torn: c.torn,
        in_flight: c.in_flight,
        process_dropped,
        strings_overflow: view.header.strings_overflow.load(Relaxed),
        messages_lost: c.messages_lost,
        messages_unread: c.messages_unread,
        names_unresolved: c.names_unresolved,
        repairs: c.repairs,
    })
}

/// Redacts the literals of an SQL statement (`sql[..sql_len]`, UTF-8):
/// numbers, strings and IN lists become `?`, so queries that differ only in
/// their values share one name and no value reaches the ring. Writes the
/// result to `out` (NUL-terminated when `out_cap` leaves room) and its
/// length to `*out_len`; returns `PROFILIS_ERR_BUFFER_TOO_SMALL`, writing
/// nothing to `out`, when `out_cap` is below that length (call with
/// `out = NULL, out_cap = 0` to learn it).
///
/// # Safety
/// `sql` is readable for `sql_len` bytes; a non-NULL `out` is writable for
/// `out_cap` bytes; a non-NULL `out_len` is writable.
#[no_mangle]
pub unsafe extern "C" fn profilis_redact_sql(
    sql: *const c_char,
    sql_len: usize,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        let sql = call.text(sql, sql_len, "sql")?;
        call.copy_out(redact_sql(sql).as_bytes(), out, out_cap, out_len)
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
