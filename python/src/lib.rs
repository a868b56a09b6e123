//! `profilis._native`: the Python extension module behind the `profilis`
//! package.
//!
//! Every emit is one call into Rust: look the name up in a per-process
//! cache (a Python dict, so a repeated name costs one hash lookup on a
//! string whose hash Python already cached), read the trace context from a
//! Python `ContextVar` (so threads and asyncio tasks each keep their own),
//! and record the event into the ring. Python's GIL serialises the caches;
//! the ring itself is lock-free and shared with every other writer.

#![deny(unsafe_op_in_unsafe_fn)]

use profilis::context::SpanContext;
use profilis::record::FLAG_ERROR;
use profilis::{clock, Emit, Fields, Kind, Method, MsgRef, Ring, RingOptions, StrId};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyInt, PyString};
use std::path::PathBuf;
use std::sync::OnceLock;

/// Names cached per process; past this many, names are interned without
/// caching (the ring's own table is bounded too).
const NAME_CACHE_MAX: usize = 16_384;
/// Raw SQL texts cached (raw text -> id of the redacted text).
const QUERY_CACHE_MAX: usize = 4_096;

static RING: OnceLock<Ring> = OnceLock::new();
/// The `ContextVar` holding the current [`PySpanContext`].
static CONTEXT_VAR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static NAMES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
static QUERIES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

// ---------------------------------------------------------------------------
// Trace context

/// Where the current code sits in a trace: immutable, stored in a
/// `ContextVar`.
#[pyclass(frozen, name = "SpanContext", module = "profilis")]
#[derive(Clone, Copy)]
struct PySpanContext {
    ctx: SpanContext,
}

fn hex_id(value: u128, digits: usize) -> Option<String> {
    (value != 0).then(|| format!("{value:0digits$x}"))
}

#[pymethods]
impl PySpanContext {
    /// Trace id as 32 lower-case hex digits, or None.
    #[getter]
    fn trace_id(&self) -> Option<String> {
        hex_id(self.ctx.trace_id, 32)
    }

    /// Span id as 16 hex digits, or None.
    #[getter]
    fn span_id(&self) -> Option<String> {
        hex_id(self.ctx.span_id as u128, 16)
    }

    /// Parent span id as 16 hex digits, or None for a root span.
    #[getter]
    fn parent_span_id(&self) -> Option<String> {
        hex_id(self.ctx.parent_span_id as u128, 16)
    }

    /// Whether events of this trace are recorded.
    #[getter]
    fn sampled(&self) -> bool {
        self.ctx.sampled
    }

    /// This context as a W3C `traceparent` value, or None without a trace.
    fn traceparent(&self) -> Option<String> {
        traceparent_of(&self.ctx)
    }

    fn __repr__(&self) -> String {
        format!(
            "SpanContext(trace_id={:?}, span_id={:?}, parent_span_id={:?}, sampled={})",
            self.trace_id().unwrap_or_default(),
            self.span_id().unwrap_or_default(),
            self.parent_span_id().unwrap_or_default(),
            if self.ctx.sampled { "True" } else { "False" }
        )
    }
}

fn traceparent_of(ctx: &SpanContext) -> Option<String> {
    (ctx.trace_id != 0 && ctx.span_id != 0).then(|| profilis_ffi::format_traceparent(ctx))
}

fn context_var(py: Python<'_>) -> PyResult<*mut ffi::PyObject> {
    let var = CONTEXT_VAR.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        // SAFETY: the name is a NUL-terminated static string; a NULL default
        // means "no default". The result is a new reference or NULL with an
        // exception set.
        let var = unsafe { ffi::PyContextVar_New(c"profilis_span".as_ptr(), std::ptr::null_mut()) };
        if var.is_null() {
            return Err(PyErr::fetch(py));
        }
        // SAFETY: `var` is a new, non-NULL reference we own.
        Ok(unsafe { Bound::from_owned_ptr(py, var) }.unbind())
    })?;
    Ok(var.as_ptr())
}

/// The context of the current thread or task.
fn current(py: Python<'_>) -> SpanContext {
    let Ok(var) = context_var(py) else {
        return SpanContext::NONE;
    };
    let mut value: *mut ffi::PyObject = std::ptr::null_mut();
    // SAFETY: `var` is a live ContextVar (kept by CONTEXT_VAR); `value` is a
    // valid out-pointer. On success it holds a new reference or NULL.
    let rc = unsafe { ffi::PyContextVar_Get(var, std::ptr::null_mut(), &mut value) };
    if rc < 0 {
        // Lookup failure (it cannot happen for a plain ContextVar): no trace.
        let _ = PyErr::take(py);
        return SpanContext::NONE;
    }
    if value.is_null() {
        return SpanContext::NONE;
    }
    // SAFETY: `value` is a new, non-NULL reference we own.
    let value = unsafe { Bound::from_owned_ptr(py, value) };
    match value.cast::<PySpanContext>() {
        Ok(c) => c.get().ctx,
        Err(_) => SpanContext::NONE,
    }
}

/// Makes `ctx` current; returns the token that restores the previous value.
fn enter(py: Python<'_>, ctx: SpanContext) -> PyResult<Py<PyAny>> {
    let var = context_var(py)?;
    let value = Py::new(py, PySpanContext { ctx })?;
    // SAFETY: `var` is a live ContextVar and `value` a live object; the
    // result is a new reference (the token) or NULL with an exception set.
    let token = unsafe { ffi::PyContextVar_Set(var, value.as_ptr()) };
    if token.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: `token` is a new, non-NULL reference we own.
    Ok(unsafe { Bound::from_owned_ptr(py, token) }.unbind())
}

/// Restores the value `token` replaced. A token from another context (a
/// span left in a different task than it was entered in) cannot reset;
/// the context then falls back to `fallback`.
fn leave(py: Python<'_>, token: Py<PyAny>, fallback: SpanContext) -> PyResult<()> {
    let var = context_var(py)?;
    // SAFETY: `var` is a live ContextVar and `token` a live object.
    let rc = unsafe { ffi::PyContextVar_Reset(var, token.as_ptr()) };
    if rc < 0 {
        let _ = PyErr::take(py);
        enter(py, fallback)?;
    }
    Ok(())
}

/// Whether a trace is kept at `rate` (0.0 to 1.0): the same answer for the
/// same trace id in every process, so a trace is kept or dropped whole.
fn keep(trace_id: u128, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate.is_nan() || rate <= 0.0 {
        return false;
    }
    // The low 64 bits of a W3C trace id are random.
    let threshold = (rate * 18_446_744_073_709_551_616.0) as u64;
    (trace_id as u64) < threshold
}

/// Parses an id given as hex text or an int.
fn id_arg(value: &Bound<'_, PyAny>, digits: usize, what: &str) -> PyResult<u128> {
    if let Ok(i) = value.cast::<PyInt>() {
        return i.extract::<u128>().map_err(|_| {
            PyValueError::new_err(format!(
                "{what} must be a non-negative {}-bit int",
                digits * 4
            ))
        });
    }
    let text: String = value.extract()?;
    if text.len() != digits || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PyValueError::new_err(format!(
            "{what} must be {digits} hex digits, got {text:?}"
        )));
    }
    u128::from_str_radix(&text, 16)
        .map_err(|_| PyValueError::new_err(format!("{what} must be {digits} hex digits")))
}

fn parse_header(header: &str) -> PyResult<SpanContext> {
    profilis_ffi::parse_traceparent(header.trim().as_bytes())
        .map_err(|e| PyValueError::new_err(format!("invalid traceparent {header:?}: {e}")))
}

// ---------------------------------------------------------------------------
// Names

fn ring() -> Option<&'static Ring> {
    RING.get()
}

fn cache<'py>(py: Python<'py>, cell: &'static PyOnceLock<Py<PyDict>>) -> &'py Bound<'py, PyDict> {
    cell.get_or_init(py, || PyDict::new(py).unbind()).bind(py)
}

/// The id of `name`, interned once per process.
#[inline]
fn name_id(py: Python<'_>, ring: &Ring, name: &Bound<'_, PyString>) -> PyResult<StrId> {
    let names = cache(py, &NAMES);
    if let Some(id) = names.get_item(name)? {
        return Ok(StrId(id.extract::<u32>()?));
    }
    let id = ring.intern(name.to_str()?);
    if id != StrId::OVERFLOW && names.len() < NAME_CACHE_MAX {
        names.set_item(name, id.0)?;
    }
    Ok(id)
}

/// The id of the redacted text of `sql`, redacted once per distinct text.
fn query_id(py: Python<'_>, ring: &Ring, sql: &Bound<'_, PyString>) -> PyResult<StrId> {
    let queries = cache(py, &QUERIES);
    if let Some(id) = queries.get_item(sql)? {
        return Ok(StrId(id.extract::<u32>()?));
    }
    let id = ring.intern(&profilis_ffi::redact_sql(sql.to_str()?));
    if id != StrId::OVERFLOW && queries.len() < QUERY_CACHE_MAX {
        queries.set_item(sql, id.0)?;
    }
    Ok(id)
}

/// Flags, exception type and message for an `error` argument: None or
/// False (no error), True (an error without details), an exception
/// instance (its type name and message), or a string (an exception type
/// name).
fn error_fields(
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
        let msg = if message.is_empty() {
            MsgRef(0)
        } else {
            ring.message(message)
        };
        return Ok((FLAG_ERROR, name_id(py, ring, &type_name)?, msg));
    }
    Ok((
        if error.is_truthy()? { FLAG_ERROR } else { 0 },
        StrId::NONE,
        MsgRef(0),
    ))
}

fn written(emit: Emit) -> bool {
    emit == Emit::Written
}

// ---------------------------------------------------------------------------
// Setup

/// Opens (or creates) the process's ring. `path` defaults to
/// `PROFILIS_RING`, or `$PROFILIS_DIR/profilis-<uid>.ring` (`/dev/shm`);
/// `capacity` (slots, a power of two) and `service` apply when the ring is
/// created, defaulting to `PROFILIS_CAPACITY` / `PROFILIS_SERVICE`.
/// Returns the ring's path. A second call with the same path is a no-op;
/// one with another path raises RuntimeError (one ring per process).
#[pyfunction]
#[pyo3(signature = (path=None, capacity=None, service=None))]
fn init(path: Option<PathBuf>, capacity: Option<u64>, service: Option<String>) -> PyResult<String> {
    let path = path
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(profilis::default_ring_path);
    if let Some(existing) = ring() {
        if existing.path() == path {
            return Ok(existing.path().display().to_string());
        }
        return Err(PyRuntimeError::new_err(format!(
            "profilis is already writing to {}; one ring per process (asked for {})",
            existing.path().display(),
            path.display()
        )));
    }
    let mut options = RingOptions::from_env().map_err(|e| PyValueError::new_err(e.to_string()))?;
    if let Some(capacity) = capacity {
        options.capacity = capacity;
    }
    if let Some(service) = service.filter(|s| !s.is_empty()) {
        options.service = Some(service);
    }
    let opened = Ring::create_or_open(&path, options).map_err(|e| match e {
        profilis::OpenError::InvalidOptions(_) => PyValueError::new_err(e.to_string()),
        e => PyRuntimeError::new_err(e.report()),
    })?;
    let ring = RING.get_or_init(|| opened);
    Ok(ring.path().display().to_string())
}

/// Whether `init` succeeded.
#[pyfunction]
fn is_initialized() -> bool {
    ring().is_some()
}

/// Path of the ring file, or None before `init`.
#[pyfunction]
fn ring_path() -> Option<String> {
    ring().map(|r| r.path().display().to_string())
}

/// Interns `name` and returns its id (cached).
#[pyfunction]
fn intern(py: Python<'_>, name: &Bound<'_, PyString>) -> PyResult<u32> {
    let ring = ring().ok_or_else(|| PyRuntimeError::new_err("profilis.init() was not called"))?;
    Ok(name_id(py, ring, name)?.0)
}

// ---------------------------------------------------------------------------
// Emits

/// Records a request: route template, HTTP status, duration in ns, method,
/// bytes in and out, and an optional error (exception, type name or bool;
/// a status of 500 or above is an error too). Returns True when the event
/// was written; False when the ring is full, profilis is not initialised,
/// or the current trace is not sampled.
#[pyfunction]
#[pyo3(signature = (route, status, dur_ns, method=None, bytes_in=0, bytes_out=0, error=None))]
#[allow(clippy::too_many_arguments)]
fn emit_req(
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
fn emit_fn(
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
fn emit_db(
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
fn emit_custom(py: Python<'_>, name: &Bound<'_, PyString>, value: f64) -> PyResult<bool> {
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

// ---------------------------------------------------------------------------
// Spans

/// A span to use with `with`: entering makes it the current context of the
/// thread or task; leaving restores the previous one and, for a named span,
/// records an FN event (flagged as an error, with the exception's type and
/// message, when an exception propagates).
#[pyclass(name = "Span", module = "profilis")]
struct PySpan {
    name: Option<Py<PyString>>,
    /// Context to start from instead of the current one.
    base: Option<SpanContext>,
    /// Explicit span id for an unnamed span.
    span_id: Option<u64>,
    ctx: SpanContext,
    previous: SpanContext,
    start_ns: u64,
    token: Option<Py<PyAny>>,
    entered: bool,
}

#[pymethods]
impl PySpan {
    fn __enter__(mut slf: PyRefMut<'_, Self>) -> PyResult<PyRefMut<'_, Self>> {
        let py = slf.py();
        if slf.entered {
            return Err(PyRuntimeError::new_err("a span can be entered only once"));
        }
        let previous = current(py);
        let base = slf.base.unwrap_or(previous);
        let ctx = if slf.name.is_some() {
            base.child()
        } else {
            let mut ctx = base;
            if let Some(id) = slf.span_id {
                if id != ctx.span_id {
                    ctx.parent_span_id = if base.trace_id == previous.trace_id {
                        previous.span_id
                    } else {
                        0
                    };
                    ctx.span_id = id;
                }
            }
            ctx
        };
        slf.token = Some(enter(py, ctx)?);
        slf.ctx = ctx;
        slf.previous = previous;
        slf.entered = true;
        slf.start_ns = clock::mono_ns();
        Ok(slf)
    }

    #[pyo3(signature = (exc_type=None, exc_value=None, traceback=None))]
    fn __exit__(
        &mut self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        exc_value: Option<&Bound<'_, PyAny>>,
        traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let _ = traceback;
        let end = clock::mono_ns();
        if let Some(token) = self.token.take() {
            leave(py, token, self.previous)?;
        }
        let (Some(ring), Some(name)) = (ring(), self.name.as_ref()) else {
            return Ok(false);
        };
        if !self.ctx.sampled {
            return Ok(false);
        }
        let failed = exc_type.is_some_and(|t| !t.is_none());
        let (flags, exception_type, message) = if failed {
            match exc_value.filter(|v| !v.is_none()) {
                Some(v) => error_fields(py, ring, Some(v))?,
                None => (FLAG_ERROR, StrId::NONE, MsgRef(0)),
            }
        } else {
            (0, StrId::NONE, MsgRef(0))
        };
        let fields = Fields {
            flags,
            dur_ns: end.saturating_sub(self.start_ns),
            ts_mono_ns: end,
            exception_type,
            message,
            span: Some(self.ctx),
            ..Fields::default()
        };
        ring.record(Kind::Fn, name_id(py, ring, name.bind(py))?, &fields);
        Ok(false)
    }

    /// The span's context (valid once entered).
    #[getter]
    fn context(&self) -> PySpanContext {
        PySpanContext { ctx: self.ctx }
    }

    /// Trace id (32 hex digits) once entered.
    #[getter]
    fn trace_id(&self) -> Option<String> {
        hex_id(self.ctx.trace_id, 32)
    }

    /// Span id (16 hex digits) once entered.
    #[getter]
    fn span_id(&self) -> Option<String> {
        hex_id(self.ctx.span_id as u128, 16)
    }

    /// Parent span id (16 hex digits), None for a root.
    #[getter]
    fn parent_span_id(&self) -> Option<String> {
        hex_id(self.ctx.parent_span_id as u128, 16)
    }

    /// The span as a `traceparent` value for an outgoing call.
    fn traceparent(&self) -> Option<String> {
        traceparent_of(&self.ctx)
    }
}

/// A span for `with`. With a `name`, a child of the current span (or the
/// root of a new trace) that records an FN event when it ends. Without one,
/// it only sets the context: continue an incoming trace with
/// `traceparent=`, or set ids explicitly with `trace_id=` / `span_id=`
/// (hex strings or ints).
#[pyfunction]
#[pyo3(signature = (name=None, *, trace_id=None, span_id=None, traceparent=None))]
fn use_span(
    py: Python<'_>,
    name: Option<Py<PyString>>,
    trace_id: Option<&Bound<'_, PyAny>>,
    span_id: Option<&Bound<'_, PyAny>>,
    traceparent: Option<&str>,
) -> PyResult<PySpan> {
    let mut base = match traceparent {
        Some(header) => Some(parse_header(header)?),
        None => None,
    };
    if let Some(t) = trace_id.filter(|t| !t.is_none()) {
        let trace_id = id_arg(t, 32, "trace_id")?;
        if trace_id == 0 {
            return Err(PyValueError::new_err("trace_id must not be zero"));
        }
        let from = base.unwrap_or_else(|| current(py));
        base = Some(if from.trace_id == trace_id {
            from
        } else {
            SpanContext {
                trace_id,
                span_id: 0,
                parent_span_id: 0,
                sampled: true,
            }
        });
    }
    let span_id = match span_id.filter(|s| !s.is_none()) {
        Some(s) => {
            let id = id_arg(s, 16, "span_id")?;
            Some(u64::try_from(id).map_err(|_| PyValueError::new_err("span_id exceeds 64 bits"))?)
        }
        None => None,
    };
    Ok(PySpan {
        name,
        base,
        span_id,
        ctx: SpanContext::NONE,
        previous: SpanContext::NONE,
        start_ns: 0,
        token: None,
        entered: false,
    })
}

/// The work of one HTTP request, for framework adapters: created (and made
/// current) when the request starts, `finish`ed with what the response
/// was.
#[pyclass(name = "RequestScope", module = "profilis")]
struct RequestScope {
    ctx: SpanContext,
    previous: SpanContext,
    start_ns: u64,
    token: Option<Py<PyAny>>,
}

/// Starts a request: continues the trace of an incoming `traceparent`
/// (ignored when malformed) or starts one, decides sampling from the trace
/// id at `sample` (0.0 to 1.0, the same decision for the same trace
/// everywhere), and makes the request's span current.
#[pyfunction]
#[pyo3(signature = (traceparent=None, sample=1.0))]
fn start_request(py: Python<'_>, traceparent: Option<&str>, sample: f64) -> PyResult<RequestScope> {
    let previous = current(py);
    let parent = traceparent
        .and_then(|h| profilis_ffi::parse_traceparent(h.trim().as_bytes()).ok())
        .unwrap_or(previous);
    let mut ctx = parent.child();
    ctx.sampled = keep(ctx.trace_id, sample);
    let token = enter(py, ctx)?;
    Ok(RequestScope {
        ctx,
        previous,
        start_ns: clock::mono_ns(),
        token: Some(token),
    })
}

#[pymethods]
impl RequestScope {
    /// Ends the request: restores the previous context and, when the trace
    /// is sampled, records the REQ event. Returns True when it was written.
    /// Only the first call records.
    #[pyo3(signature = (route, method=None, status=200, bytes_in=0, bytes_out=0, error=None))]
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        py: Python<'_>,
        route: &Bound<'_, PyString>,
        method: Option<&str>,
        status: u16,
        bytes_in: u64,
        bytes_out: u64,
        error: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let end = clock::mono_ns();
        let Some(token) = self.token.take() else {
            return Ok(false);
        };
        leave(py, token, self.previous)?;
        let Some(ring) = ring() else { return Ok(false) };
        if !self.ctx.sampled {
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
            dur_ns: end.saturating_sub(self.start_ns),
            ts_mono_ns: end,
            exception_type,
            message,
            value: bytes_in,
            value2: bytes_out,
            span: Some(self.ctx),
        };
        Ok(written(ring.record(
            Kind::Req,
            name_id(py, ring, route)?,
            &fields,
        )))
    }

    /// Restores the previous context without recording anything.
    fn cancel(&mut self, py: Python<'_>) -> PyResult<()> {
        if let Some(token) = self.token.take() {
            leave(py, token, self.previous)?;
        }
        Ok(())
    }

    /// Whether this request's trace is recorded.
    #[getter]
    fn sampled(&self) -> bool {
        self.ctx.sampled
    }

    /// The request span's context.
    #[getter]
    fn context(&self) -> PySpanContext {
        PySpanContext { ctx: self.ctx }
    }

    /// Trace id (32 hex digits).
    #[getter]
    fn trace_id(&self) -> Option<String> {
        hex_id(self.ctx.trace_id, 32)
    }

    /// The request span as a `traceparent` value (for the response).
    fn traceparent(&self) -> Option<String> {
        traceparent_of(&self.ctx)
    }
}

// ---------------------------------------------------------------------------
// Context helpers

/// The current trace id (32 hex digits), or None outside a trace.
#[pyfunction]
fn get_trace_id(py: Python<'_>) -> Option<String> {
    hex_id(current(py).trace_id, 32)
}

/// The current span id (16 hex digits), or None.
#[pyfunction]
fn get_span_id(py: Python<'_>) -> Option<String> {
    hex_id(current(py).span_id as u128, 16)
}

/// The current span's parent id (16 hex digits), or None.
#[pyfunction]
fn get_parent_span_id(py: Python<'_>) -> Option<String> {
    hex_id(current(py).parent_span_id as u128, 16)
}

/// The current context, or None outside a trace.
#[pyfunction]
fn current_context(py: Python<'_>) -> Option<PySpanContext> {
    let ctx = current(py);
    (ctx.trace_id != 0).then_some(PySpanContext { ctx })
}

/// A new random span id (16 hex digits).
#[pyfunction]
fn span_id() -> String {
    format!("{:016x}", profilis::context::new_span_id())
}

/// A new random trace id (32 hex digits).
#[pyfunction]
fn new_trace_id() -> String {
    format!("{:032x}", profilis::context::new_trace_id())
}

/// The current context as a `traceparent` value for an outgoing request,
/// or None outside a trace.
#[pyfunction]
fn traceparent(py: Python<'_>) -> Option<String> {
    traceparent_of(&current(py))
}

/// Parses a W3C `traceparent` value into the remote parent's context;
/// raises ValueError when it is malformed.
#[pyfunction]
fn parse_traceparent(header: &str) -> PyResult<PySpanContext> {
    Ok(PySpanContext {
        ctx: parse_header(header)?,
    })
}

/// Whether a trace with this id is kept at sampling rate `rate`.
#[pyfunction]
fn sampled(trace_id: &Bound<'_, PyAny>, rate: f64) -> PyResult<bool> {
    Ok(keep(id_arg(trace_id, 32, "trace_id")?, rate))
}

// ---------------------------------------------------------------------------
// Utilities

/// Redacts the literals of an SQL statement (numbers, strings, IN lists
/// become `?`) with the same Rust redactor every Profilis writer uses.
#[pyfunction]
fn redact_sql(sql: &str) -> String {
    profilis_ffi::redact_sql(sql)
}

/// `CLOCK_MONOTONIC` in ns (the clock of event timestamps; the same clock
/// as `time.monotonic_ns()` on Linux).
#[pyfunction]
fn mono_ns() -> u64 {
    clock::mono_ns()
}

/// The ring's counters as writers see them (a dict), or None before `init`:
/// a consistent snapshot, for which `received + dropped + abandoned + torn +
/// in_flight == claimed`.
#[pyfunction]
fn counters(py: Python<'_>) -> PyResult<Option<Bound<'_, PyDict>>> {
    let Some(ring) = ring() else { return Ok(None) };
    let c = profilis_ffi::counters(ring).ok_or_else(|| {
        PyRuntimeError::new_err("the consumer state kept changing while read; try again")
    })?;
    let d = PyDict::new(py);
    d.set_item("claimed", c.claimed)?;
    d.set_item("dropped", c.dropped)?;
    d.set_item("dropped_full", c.dropped_full)?;
    d.set_item("overwritten", c.overwritten)?;
    d.set_item("received", c.received)?;
    d.set_item("abandoned", c.abandoned)?;
    d.set_item("torn", c.torn)?;
    d.set_item("in_flight", c.in_flight)?;
    d.set_item("process_dropped", c.process_dropped)?;
    d.set_item("strings_overflow", c.strings_overflow)?;
    d.set_item("messages_lost", c.messages_lost)?;
    d.set_item("messages_unread", c.messages_unread)?;
    d.set_item("names_unresolved", c.names_unresolved)?;
    d.set_item("repairs", c.repairs)?;
    Ok(Some(d))
}

/// The native half of the `profilis` package.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    context_var(m.py())?;
    m.add_class::<PySpanContext>()?;
    m.add_class::<PySpan>()?;
    m.add_class::<RequestScope>()?;
    m.add_function(wrap_pyfunction!(init, m)?)?;
    m.add_function(wrap_pyfunction!(is_initialized, m)?)?;
    m.add_function(wrap_pyfunction!(ring_path, m)?)?;
    m.add_function(wrap_pyfunction!(intern, m)?)?;
    m.add_function(wrap_pyfunction!(emit_req, m)?)?;
    m.add_function(wrap_pyfunction!(emit_fn, m)?)?;
    m.add_function(wrap_pyfunction!(emit_db, m)?)?;
    m.add_function(wrap_pyfunction!(emit_custom, m)?)?;
    m.add_function(wrap_pyfunction!(use_span, m)?)?;
    m.add_function(wrap_pyfunction!(start_request, m)?)?;
    m.add_function(wrap_pyfunction!(get_trace_id, m)?)?;
    m.add_function(wrap_pyfunction!(get_span_id, m)?)?;
    m.add_function(wrap_pyfunction!(get_parent_span_id, m)?)?;
    m.add_function(wrap_pyfunction!(current_context, m)?)?;
    m.add_function(wrap_pyfunction!(span_id, m)?)?;
    m.add_function(wrap_pyfunction!(new_trace_id, m)?)?;
    m.add_function(wrap_pyfunction!(traceparent, m)?)?;
    m.add_function(wrap_pyfunction!(parse_traceparent, m)?)?;
    m.add_function(wrap_pyfunction!(sampled, m)?)?;
    m.add_function(wrap_pyfunction!(redact_sql, m)?)?;
    m.add_function(wrap_pyfunction!(mono_ns, m)?)?;
    m.add_function(wrap_pyfunction!(counters, m)?)?;
    m.add("ABI_VERSION", profilis_ffi::ABI_VERSION)?;
    Ok(())
}
