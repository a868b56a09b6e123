//! The trace context: the current span of each thread or asyncio task,
//! kept in a Python `ContextVar`, and the id helpers of the API.

use profilis::clock::Stamp;
use profilis::context::SpanContext;
use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyInt, PyString};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// The `ContextVar` holding the current [`PySpanContext`].
static CONTEXT_VAR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A span to use with `with`: entering makes it the current context of the
/// thread or task; leaving restores the previous one and, for a named span,
/// records an FN event (flagged as an error, with the exception's type and
/// message, when an exception propagates). Its methods are in `span`; the
/// type is here because an entered span is the context variable's value,
/// which [`current`] reads.
#[pyclass(name = "Span", module = "profilis")]
pub(crate) struct PySpan {
    pub(crate) name: Option<Py<PyString>>,
    /// Context to start from instead of the current one.
    pub(crate) base: Option<SpanContext>,
    /// Explicit span id for an unnamed span.
    pub(crate) span_id: Option<u64>,
    /// The span's context once entered (read by `context::current` while
    /// the span is current).
    pub(crate) ctx: SpanContext,
    pub(crate) previous: SpanContext,
    pub(crate) start: Stamp,
    pub(crate) token: Option<Py<PyAny>>,
    pub(crate) entered: bool,
}

/// Where the current code sits in a trace: immutable, stored in a
/// `ContextVar`.
#[pyclass(frozen, name = "SpanContext", module = "profilis")]
#[derive(Clone, Copy)]
pub(crate) struct PySpanContext {
    pub(crate) ctx: SpanContext,
}

pub(crate) fn hex_id(value: u128, digits: usize) -> Option<String> {
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

pub(crate) fn traceparent_of(ctx: &SpanContext) -> Option<String> {
    (ctx.trace_id != 0 && ctx.span_id != 0).then(|| profilis_ffi::format_traceparent(ctx))
}

pub(crate) fn context_var(py: Python<'_>) -> PyResult<*mut ffi::PyObject> {
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
pub(crate) fn current(py: Python<'_>) -> SpanContext {
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
    if let Ok(c) = value.cast_exact::<PySpanContext>() {
        return c.get().ctx;
    }
    if let Ok(c) = value.cast_exact::<CallContext>() {
        return c.get().get();
    }
    // An entered `use_span` span is its own value. It is borrowed
    // mutably only inside its own `__enter__` and `__exit__`, which set or
    // reset the variable before anything can read it.
    match value.cast_exact::<PySpan>().map(|s| s.try_borrow()) {
        Ok(Ok(span)) => span.ctx,
        _ => SpanContext::NONE,
    }
}

/// The context variable's value during a call of a `@profile`d function:
/// a [`SpanContext`] that can be rewritten, so that the object of a call
/// that nothing else kept (the usual case) serves the thread's next call.
#[pyclass(frozen, name = "CallContext", module = "profilis")]
pub(crate) struct CallContext {
    trace_hi: AtomicU64,
    trace_lo: AtomicU64,
    span_id: AtomicU64,
    parent_span_id: AtomicU64,
    sampled: AtomicBool,
}

impl CallContext {
    fn new(ctx: SpanContext) -> Self {
        let c = CallContext {
            trace_hi: AtomicU64::new(0),
            trace_lo: AtomicU64::new(0),
            span_id: AtomicU64::new(0),
            parent_span_id: AtomicU64::new(0),
            sampled: AtomicBool::new(false),
        };
        c.set(ctx);
        c
    }

    // Relaxed: the GIL orders every access (the module does not run
    // without it).
    fn set(&self, ctx: SpanContext) {
        self.trace_hi.store((ctx.trace_id >> 64) as u64, Relaxed);
        self.trace_lo.store(ctx.trace_id as u64, Relaxed);
        self.span_id.store(ctx.span_id, Relaxed);
        self.parent_span_id.store(ctx.parent_span_id, Relaxed);
        self.sampled.store(ctx.sampled, Relaxed);
    }

    fn get(&self) -> SpanContext {
        SpanContext {
            trace_id: u128::from(self.trace_hi.load(Relaxed)) << 64
                | u128::from(self.trace_lo.load(Relaxed)),
            span_id: self.span_id.load(Relaxed),
            parent_span_id: self.parent_span_id.load(Relaxed),
            sampled: self.sampled.load(Relaxed),
        }
    }
}

/// Spare [`CallContext`]s of this thread, at most this many.
const SPARE_CALL_CONTEXTS: usize = 8;

thread_local! {
    static SPARES: RefCell<Vec<Py<CallContext>>> = const { RefCell::new(Vec::new()) };
}

/// A [`CallContext`] holding `ctx`, reused when the thread has a spare.
pub(crate) fn call_context(py: Python<'_>, ctx: SpanContext) -> PyResult<Py<CallContext>> {
    let spare = SPARES
        .try_with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.pop()))
        .ok()
        .flatten();
    match spare {
        Some(value) => {
            value.get().set(ctx);
            Ok(value)
        }
        None => Py::new(py, CallContext::new(ctx)),
    }
}

/// Gives `value` back for the thread's next call when nothing else holds
/// it any more (no task or copied context kept the call's context): it can
/// then be rewritten without anyone seeing the change.
pub(crate) fn spare_call_context(value: Py<CallContext>) {
    // SAFETY: `value` is a live object; reading its reference count.
    if unsafe { ffi::Py_REFCNT(value.as_ptr()) } != 1 {
        return;
    }
    let rejected = SPARES
        .try_with(|s| match s.try_borrow_mut() {
            Ok(mut s) if s.len() < SPARE_CALL_CONTEXTS => {
                s.push(value);
                None
            }
            _ => Some(value),
        })
        .unwrap_or(None);
    // Dropped outside the borrow.
    drop(rejected);
}

/// Makes `ctx` current; returns the token that restores the previous value.
pub(crate) fn enter(py: Python<'_>, ctx: SpanContext) -> PyResult<Py<PyAny>> {
    let value = Bound::new(py, PySpanContext { ctx })?;
    enter_value(py, value.as_any())
}

/// Makes `value` (a [`PySpanContext`], or an entered [`PySpan`]) the
/// context variable's value; returns the token that restores the previous
/// one.
pub(crate) fn enter_value(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let var = context_var(py)?;
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
pub(crate) fn leave(py: Python<'_>, token: Py<PyAny>, fallback: SpanContext) -> PyResult<()> {
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
pub(crate) fn keep(trace_id: u128, rate: f64) -> bool {
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
pub(crate) fn id_arg(value: &Bound<'_, PyAny>, digits: usize, what: &str) -> PyResult<u128> {
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

/// Parses a trace id: 32 hex digits, an int, or 16 hex digits (a 64-bit
/// id, as `span_id()` makes, widened with leading zeros, as W3C Trace
/// Context says a 64-bit trace id is carried).
pub(crate) fn trace_id_arg(value: &Bound<'_, PyAny>) -> PyResult<u128> {
    let short = value
        .cast::<PyString>()
        .is_ok_and(|s| s.to_str().is_ok_and(|t| t.len() == 16));
    let id = id_arg(value, if short { 16 } else { 32 }, "trace_id")?;
    if id == 0 {
        return Err(PyValueError::new_err("trace_id must not be zero"));
    }
    Ok(id)
}

pub(crate) fn parse_header(header: &str) -> PyResult<SpanContext> {
    profilis_ffi::parse_traceparent(header.trim().as_bytes())
        .map_err(|e| PyValueError::new_err(format!("invalid traceparent {header:?}: {e}")))
}

/// The current trace id (32 hex digits), or None outside a trace.
#[pyfunction]
pub(crate) fn get_trace_id(py: Python<'_>) -> Option<String> {
    hex_id(current(py).trace_id, 32)
}

/// The current span id (16 hex digits), or None.
#[pyfunction]
pub(crate) fn get_span_id(py: Python<'_>) -> Option<String> {
    hex_id(current(py).span_id as u128, 16)
}

/// The current span's parent id (16 hex digits), or None.
#[pyfunction]
pub(crate) fn get_parent_span_id(py: Python<'_>) -> Option<String> {
    hex_id(current(py).parent_span_id as u128, 16)
}

/// The current context, or None outside a trace.
#[pyfunction]
pub(crate) fn current_context(py: Python<'_>) -> Option<PySpanContext> {
    let ctx = current(py);
    (ctx.trace_id != 0).then_some(PySpanContext { ctx })
}

/// A new random span id (16 hex digits).
#[pyfunction]
pub(crate) fn span_id() -> String {
    format!("{:016x}", profilis::context::new_span_id())
}

/// A new random trace id (32 hex digits).
#[pyfunction]
pub(crate) fn new_trace_id() -> String {
    format!("{:032x}", profilis::context::new_trace_id())
}

/// The current context as a `traceparent` value for an outgoing request,
/// or None outside a trace.
#[pyfunction]
pub(crate) fn traceparent(py: Python<'_>) -> Option<String> {
    traceparent_of(&current(py))
}

/// Parses a W3C `traceparent` value into the remote parent's context;
/// raises ValueError when it is malformed.
#[pyfunction]
pub(crate) fn parse_traceparent(header: &str) -> PyResult<PySpanContext> {
    Ok(PySpanContext {
        ctx: parse_header(header)?,
    })
}

/// Whether a trace with this id is kept at sampling rate `rate`.
#[pyfunction]
pub(crate) fn sampled(trace_id: &Bound<'_, PyAny>, rate: f64) -> PyResult<bool> {
    Ok(keep(trace_id_arg(trace_id)?, rate))
}
