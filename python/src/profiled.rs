//! `@profile` on plain functions: a native callable that enters the span,
//! calls the function and records the FN event without running any Python
//! code of its own.

use crate::context::{call_context, current, enter_value, leave, spare_call_context};
use crate::emit::error_fields;
use crate::names::name_id;
use crate::setup::ring;
use profilis::record::FLAG_ERROR;
use profilis::{clock, Fields, Kind, MsgRef, Ring, StrId};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

// Not declared by pyo3-ffi; part of CPython's stable ABI.
extern "C" {
    fn PyMethod_New(func: *mut ffi::PyObject, instance: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

/// No name id cached yet (ids are 32-bit).
const NO_ID: u64 = u64::MAX;

/// A function decorated with `@profile`: each call runs in a child span of
/// the current context and records an FN event under `name` (flagged as an
/// error, with the exception's type and message, when an exception
/// propagates). `profilis.profile` copies the function's `__name__`,
/// `__qualname__`, `__doc__`, `__module__` and `__dict__` onto it and sets
/// `__wrapped__`, as `functools.wraps` does; as a class attribute it binds
/// to instances like a function.
#[pyclass(frozen, dict, weakref, name = "ProfiledFunction", module = "profilis")]
pub(crate) struct Profiled {
    func: Py<PyAny>,
    name: Py<PyString>,
    /// The name's string id in the ring, once interned (`NO_ID` before).
    id: AtomicU64,
}

impl Profiled {
    /// The name's id, looked up once per wrapper (the ring is opened once
    /// per process, so the id never changes).
    fn name_id(&self, py: Python<'_>, ring: &Ring) -> PyResult<StrId> {
        // ORDERING: Relaxed, no pair: the GIL orders every call, and the id
        // is a plain value (a racing store writes the same one).
        let cached = self.id.load(Relaxed);
        if cached != NO_ID {
            return Ok(StrId(cached as u32));
        }
        let id = name_id(py, ring, self.name.bind(py))?;
        if id != StrId::OVERFLOW {
            self.id.store(u64::from(id.0), Relaxed);
        }
        Ok(id)
    }
}

#[pymethods]
impl Profiled {
    #[new]
    fn new(func: Py<PyAny>, name: Py<PyString>) -> Self {
        Profiled {
            func,
            name,
            id: AtomicU64::new(NO_ID),
        }
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let previous = current(py);
        let ctx = previous.child();
        let value = call_context(py, ctx)?;
        let token = enter_value(py, value.bind(py).as_any())?;
        let start = clock::now();
        let result = self.func.bind(py).call(args, kwargs);
        let (dur_ns, end) = clock::since(start);
        leave(py, token, previous)?;
        spare_call_context(value);
        let Some(ring) = ring() else {
            return Ok(result?.unbind());
        };
        if !ctx.sampled {
            return Ok(result?.unbind());
        }
        let (flags, exception_type, message) = match &result {
            Ok(_) => (0, StrId::NONE, MsgRef(0)),
            // An exception whose type name or text cannot be read is still
            // an error; the call's own exception is the one raised.
            // `into_value` attaches the traceback pyo3 fetched with the
            // error to the exception (the same object the call raises), so
            // its stack can be recorded.
            Err(e) => error_fields(
                py,
                ring,
                Some(e.clone_ref(py).into_value(py).bind(py).as_any()),
            )
            .unwrap_or((FLAG_ERROR, StrId::NONE, MsgRef(0))),
        };
        let fields = Fields {
            flags,
            dur_ns,
            ts_mono_ns: end,
            exception_type,
            message,
            span: Some(ctx),
            ..Fields::default()
        };
        ring.record(Kind::Fn, self.name_id(py, ring)?, &fields);
        Ok(result?.unbind())
    }

    /// Binds to an instance as a function does (a bound method), or is
    /// itself when read from the class.
    fn __get__(
        slf: &Bound<'_, Self>,
        instance: Option<&Bound<'_, PyAny>>,
        owner: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let _ = owner;
        let Some(instance) = instance.filter(|i| !i.is_none()) else {
            return Ok(slf.clone().into_any().unbind());
        };
        let py = slf.py();
        // SAFETY: both are live objects; the result is a new reference or
        // NULL with an exception set.
        let method = unsafe { PyMethod_New(slf.as_ptr(), instance.as_ptr()) };
        if method.is_null() {
            return Err(PyErr::fetch(py));
        }
        // SAFETY: `method` is a new, non-NULL reference we own.
        Ok(unsafe { Bound::from_owned_ptr(py, method) }.unbind())
    }

    /// Pickled by reference, as a function is: the object found under its
    /// `__qualname__` in its `__module__`.
    fn __reduce__(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        Ok(slf.getattr("__qualname__")?.unbind())
    }

    /// The name the calls are recorded under.
    #[getter]
    fn profile_name(&self, py: Python<'_>) -> Py<PyString> {
        self.name.clone_ref(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("<profiled {}>", self.func.bind(py).repr()?))
    }
}
