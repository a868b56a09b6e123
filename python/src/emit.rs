//! The emit functions: one event each, straight into the ring.

use crate::context::current;
use crate::names::{name_id, query_id};
use crate::setup::ring;
use profilis::record::FLAG_ERROR;
use profilis::{Emit, Fields, Kind, Method, MsgRef, Ring, StrId};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyList, PyString};

/// Flags, exception type and message for an `error` argument: None or
/// False (no error), True (an error without details), an exception
/// instance (its type name and message), or a string (an exception type
/// name).
pub(crate) fn error_fields(
    py: Python<'_>,
    ring: &Ring,
    error: Option<&Bound<'_, PyAny>>,
) -> PyResult<(u8, StrId, MsgRef)> {
    let Some(error) = error else {
        return Ok((0, StrId::NONE, MsgRef(0)));
    };
    if error.is_none() {
        return Ok((0, StrId::NONE, MsgRef(0)));
    }
    if let Ok(b) = error.cast::<PyBool>() {
        return Ok((
            if b.is_true() { FLAG_ERROR } else { 0 },
            StrId::NONE,
            MsgRef(0),
        ));
    }
    if let Ok(s) = error.cast::<PyString>() {
        return Ok((FLAG_ERROR, name_id(py, ring, s)?, MsgRef(0)));
    }
    if error.is_instance_of::<pyo3::exceptions::PyBaseException>() {
        let type_name = error.get_type().name()?;
        let message = error.str()?;
        let message = message.to_str()?;
        // A traceback that cannot be formatted leaves the message without
        // its stack; the error is recorded all the same.
        let stack = exception_stack(py, error).ok().flatten();
        let msg = if message.is_empty() && stack.is_none() {
            MsgRef(0)
        } else {
            ring.message_with_stack(message, stack.as_deref())
        };
        return Ok((FLAG_ERROR, name_id(py, ring, &type_name)?, msg));
    }
    Ok((
        if error.is_truthy()? { FLAG_ERROR } else { 0 },
        StrId::NONE,
        MsgRef(0),
    ))
}

/// Most frames formatted on each side of the point where the exception
/// was caught (the ring keeps the innermost ~3.5 KB of them anyway).
const STACK_FRAMES: i32 = 64;

/// The stack of an exception that has a traceback, as Python prints it
/// ("most recent call last"): the frames that led to the frame that
/// caught it (still running while the error is recorded: the caller of a
/// `@profile` function, the application code behind a SQLAlchemy query),
/// then the frames the exception came through, then its type and message.
/// `None` for an exception never raised.
fn exception_stack(py: Python<'_>, error: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    let tb = error.getattr(intern!(py, "__traceback__"))?;
    if tb.is_none() {
        return Ok(None);
    }
    let traceback = py.import(intern!(py, "traceback"))?;
    let outer = tb
        .getattr(intern!(py, "tb_frame"))?
        .getattr(intern!(py, "f_back"))?;
    let frames = if outer.is_none() {
        PyList::empty(py).into_any()
    } else {
        traceback.call_method1(intern!(py, "extract_stack"), (outer, STACK_FRAMES))?
    };
    let inner = traceback.call_method1(intern!(py, "extract_tb"), (&tb, -STACK_FRAMES))?;
    let lines = traceback.call_method1(intern!(py, "format_list"), (frames.add(inner)?,))?;
    let last = traceback.call_method1(
        intern!(py, "format_exception_only"),
        (error.get_type(), error),
    )?;
    let mut text = String::from("Traceback (most recent call last):\n");
    for line in lines.try_iter()?.chain(last.try_iter()?) {
        text.push_str(line?.cast::<PyString>()?.to_str()?);
    }
    Ok(Some(text))
}

pub(crate) fn written(emit: Emit) -> bool {
    emit == Emit::Written
}

/// Records a request: route template, HTTP status, duration in ns, method,
/// bytes in and out, and an optional error (exception, type name or bool;
/// a status of 500 or above is an error too). Returns True when the event
/// was written; False when the ring is full, profilis is not initialised,
/// or the current trace is not sampled.
#[pyfunction]
#[pyo3(signature = (route, status, dur_ns, method=None, bytes_in=0, bytes_out=0, error=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn emit_req(
    py: Python<'_>,
    route: &Bound<'_, PyString>,
    status: u16,
    dur_ns: u64,
    method: Option<&str>,
    bytes_in: u64,
    bytes_out: u64,
    error: Option<&Bound<'_, PyAny>>,
) -> PyResult<bool> {
    let Some(ring) = ring() else { return Ok(false) };
    let span = current(py);
    if span.trace_id != 0 && !span.sampled {
        return Ok(false);
    }
    let (mut flags, exception_type, message) = error_fields(py, ring, error)?;
    if status >= 500 {
        flags |= FLAG_ERROR;
    }
    let fields = Fields {
        flags,
        method: method.map_or(Method::None, Method::parse),
        status,
        dur_ns,
        exception_type,
        message,
        value: bytes_in,
        value2: bytes_out,
        span: Some(span),
        ..Fields::default()
    };
    Ok(written(ring.record(
        Kind::Req,
        name_id(py, ring, route)?,
        &fields,
    )))
}

/// Records a function call: name, duration in ns, and whether it failed
/// (`error`: bool, exception instance or exception type name).
#[pyfunction]
#[pyo3(signature = (name, dur_ns, error=None))]
pub(crate) fn emit_fn(
    py: Python<'_>,
    name: &Bound<'_, PyString>,
    dur_ns: u64,
    error: Option<&Bound<'_, PyAny>>,
) -> PyResult<bool> {
    let Some(ring) = ring() else { return Ok(false) };
    let span = current(py);
    if span.trace_id != 0 && !span.sampled {
        return Ok(false);
    }
    let (flags, exception_type, message) = error_fields(py, ring, error)?;
    let fields = Fields {
        flags,
        dur_ns,
        exception_type,
        message,
        span: Some(span),
        ..Fields::default()
    };
    Ok(written(ring.record(
        Kind::Fn,
        name_id(py, ring, name)?,
        &fields,
    )))
}

/// Records a database query: SQL text (its literals are redacted in Rust
/// unless `redact=False`, for text that is already redacted), duration in
/// ns, rows, and an optional error.
#[pyfunction]
#[pyo3(signature = (query, dur_ns, rows=0, redact=true, error=None))]
pub(crate) fn emit_db(
    py: Python<'_>,
    query: &Bound<'_, PyString>,
    dur_ns: u64,
    rows: u64,
    redact: bool,
    error: Option<&Bound<'_, PyAny>>,
) -> PyResult<bool> {
    let Some(ring) = ring() else { return Ok(false) };
    let span = current(py);
    if span.trace_id != 0 && !span.sampled {
        return Ok(false);
    }
    let (flags, exception_type, message) = error_fields(py, ring, error)?;
    let id = if redact {
        query_id(py, ring, query)?
    } else {
        name_id(py, ring, query)?
    };
    let fields = Fields {
        flags,
        dur_ns,
        exception_type,
        message,
        value: rows,
        span: Some(span),
        ..Fields::default()
    };
    Ok(written(ring.record(Kind::Db, id, &fields)))
}

/// Records a custom metric sample.
#[pyfunction]
pub(crate) fn emit_custom(
    py: Python<'_>,
    name: &Bound<'_, PyString>,
    value: f64,
) -> PyResult<bool> {
    let Some(ring) = ring() else { return Ok(false) };
    let span = current(py);
    if span.trace_id != 0 && !span.sampled {
        return Ok(false);
    }
    let fields = Fields {
        value: value.to_bits(),
        span: Some(span),
        ..Fields::default()
    };
    Ok(written(ring.record(
        Kind::Custom,
        name_id(py, ring, name)?,
        &fields,
    )))
}
