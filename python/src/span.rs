//! Spans (`with use_span(...)`) and the request scope of framework
//! adapters.

use crate::context::{
    current, enter, enter_value, hex_id, id_arg, keep, leave, parse_header, trace_id_arg,
    traceparent_of, PySpan, PySpanContext,
};
use crate::emit::{error_fields, written};
use crate::names::name_id;
use crate::setup::ring;
use profilis::clock::Stamp;
use profilis::context::SpanContext;
use profilis::record::FLAG_ERROR;
use profilis::{clock, Fields, Kind, Method, MsgRef, StrId};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;
use pyo3::{PyTraverseError, PyVisit};

#[pymethods]
impl PySpan {
    // While entered, the span is the context variable's value and holds
    // the token, which holds the context: a cycle that the garbage
    // collector breaks for a span that is never left.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(name) = &self.name {
            visit.call(name)?;
        }
        if let Some(token) = &self.token {
            visit.call(token)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.token = None;
    }

    fn __enter__<'py>(span: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        let py = span.py();
        let mut slf = span.try_borrow_mut()?;
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
        slf.ctx = ctx;
        slf.previous = previous;
        slf.entered = true;
        // The span itself is the context variable's value (`current`
        // reads its `ctx`, which no longer changes): no object to make.
        slf.token = Some(enter_value(py, span.as_any())?);
        slf.start = clock::now();
        drop(slf);
        Ok(span.clone())
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
        let (dur_ns, end) = clock::since(self.start);
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
            dur_ns,
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
pub(crate) fn use_span(
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
        let trace_id = trace_id_arg(t)?;
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
        start: Stamp::default(),
        token: None,
        entered: false,
    })
}

/// The work of one HTTP request, for framework adapters: created (and made
/// current) when the request starts, `finish`ed with what the response
/// was.
#[pyclass(name = "RequestScope", module = "profilis")]
pub(crate) struct RequestScope {
    ctx: SpanContext,
    previous: SpanContext,
    start: Stamp,
    token: Option<Py<PyAny>>,
    /// What `end` records, given to `start_request` (sampled requests
    /// only) and `respond`.
    route: Option<Py<PyString>>,
    method: Method,
    bytes_in: u64,
    /// 0 until `respond`: `end` then records a 500.
    status: u16,
    bytes_out: u64,
}

/// A byte count given as an HTTP header value (text) or an int: 0 when
/// absent, negative or not a number.
fn byte_count(value: Option<&Bound<'_, PyAny>>) -> u64 {
    let Some(value) = value else { return 0 };
    if let Ok(text) = value.cast::<PyString>() {
        return text
            .to_str()
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    value.extract::<u64>().unwrap_or(0)
}

/// Starts a request: continues the trace of an incoming `traceparent`
/// (ignored when malformed) or starts one, decides sampling from the trace
/// id at `sample` (0.0 to 1.0, the same decision for the same trace
/// everywhere), and makes the request's span current. `route`, `method`
/// and `content_length` (the header's text or an int) are what `end`
/// records; `finish` takes them instead.
#[pyfunction]
#[pyo3(signature = (traceparent=None, sample=1.0, route=None, method=None, content_length=None))]
pub(crate) fn start_request(
    py: Python<'_>,
    traceparent: Option<&str>,
    sample: f64,
    route: Option<Py<PyString>>,
    method: Option<&str>,
    content_length: Option<&Bound<'_, PyAny>>,
) -> PyResult<RequestScope> {
    let previous = current(py);
    let parent = traceparent
        .and_then(|h| profilis_ffi::parse_traceparent(h.trim().as_bytes()).ok())
        .unwrap_or(previous);
    let mut ctx = parent.child();
    ctx.sampled = keep(ctx.trace_id, sample);
    let token = enter(py, ctx)?;
    let sampled = ctx.sampled;
    Ok(RequestScope {
        ctx,
        previous,
        start: clock::now(),
        token: Some(token),
        route: route.filter(|_| sampled),
        method: method
            .filter(|_| sampled)
            .map_or(Method::None, Method::parse),
        bytes_in: if sampled {
            byte_count(content_length)
        } else {
            0
        },
        status: 0,
        bytes_out: 0,
    })
}

impl RequestScope {
    /// Restores the previous context and, when the trace is sampled,
    /// records the REQ event (once).
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        py: Python<'_>,
        route: &Bound<'_, PyString>,
        method: Method,
        status: u16,
        bytes_in: u64,
        bytes_out: u64,
        error: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let (dur_ns, end) = clock::since(self.start);
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
            method,
            status,
            dur_ns,
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
        let method = method.map_or(Method::None, Method::parse);
        self.record(py, route, method, status, bytes_in, bytes_out, error)
    }

    /// Notes the response (`content_length`: the header's text or an int)
    /// for `end`; does nothing for an unsampled request.
    #[pyo3(signature = (status, content_length=None))]
    fn respond(&mut self, status: u16, content_length: Option<&Bound<'_, PyAny>>) {
        if self.ctx.sampled {
            self.status = status;
            self.bytes_out = byte_count(content_length);
        }
    }

    /// Ends the request as `finish` does, with the route, method and
    /// request length given to `start_request` and the response given to
    /// `respond` (a 500 when there was none: an exception escaped).
    /// Returns True when the event was written; an unsampled request only
    /// restores the previous context.
    #[pyo3(signature = (error=None))]
    fn end(&mut self, py: Python<'_>, error: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        if self.token.is_none() {
            return Ok(false);
        }
        if !self.ctx.sampled {
            self.cancel(py)?;
            return Ok(false);
        }
        let Some(route) = self.route.take() else {
            self.cancel(py)?;
            return Err(PyValueError::new_err(
                "end() needs the route given to start_request()",
            ));
        };
        let status = if self.status == 0 { 500 } else { self.status };
        let (method, bytes_in, bytes_out) = (self.method, self.bytes_in, self.bytes_out);
        self.record(
            py,
            route.bind(py),
            method,
            status,
            bytes_in,
            bytes_out,
            error,
        )
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
