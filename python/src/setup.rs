//! Opening the process's ring, and what reads it back: counters, the
//! clock, the SQL redactor.

use crate::names::name_id;
use profilis::{clock, Ring, RingOptions};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::path::PathBuf;
use std::sync::OnceLock;

static RING: OnceLock<Ring> = OnceLock::new();

/// The ring, once `init` succeeded.
pub(crate) fn ring() -> Option<&'static Ring> {
    RING.get()
}

/// Opens (or creates) the process's ring. `path` defaults to
/// `PROFILIS_RING`, or `$PROFILIS_DIR/profilis-<uid>.ring` (`/dev/shm`);
/// `capacity` (slots, a power of two) and `service` apply when the ring is
/// created, defaulting to `PROFILIS_CAPACITY` / `PROFILIS_SERVICE`, and so
/// does `policy` (`"drop-newest"` or `"overwrite-oldest"`, default
/// `PROFILIS_POLICY`, else drop-newest). Returns the ring's path. A second call with the same path is a no-op;
/// one with another path raises RuntimeError (one ring per process).
#[pyfunction]
#[pyo3(signature = (path=None, capacity=None, service=None, policy=None))]
pub(crate) fn init(
    path: Option<PathBuf>,
    capacity: Option<u64>,
    service: Option<String>,
    policy: Option<&str>,
) -> PyResult<String> {
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
    if let Some(policy) = policy {
        options.policy = policy.parse().map_err(PyValueError::new_err)?;
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
pub(crate) fn is_initialized() -> bool {
    ring().is_some()
}

/// Path of the ring file, or None before `init`.
#[pyfunction]
pub(crate) fn ring_path() -> Option<String> {
    ring().map(|r| r.path().display().to_string())
}

/// Interns `name` and returns its id (cached).
#[pyfunction]
pub(crate) fn intern(py: Python<'_>, name: &Bound<'_, PyString>) -> PyResult<u32> {
    let ring = ring().ok_or_else(|| PyRuntimeError::new_err("profilis.init() was not called"))?;
    Ok(name_id(py, ring, name)?.0)
}

/// Redacts the literals of an SQL statement (numbers, strings, double-quoted
/// text where a value can stand, IN lists become `?`) with the same Rust
/// redactor every Profilis writer uses.
#[pyfunction]
pub(crate) fn redact_sql(sql: &str) -> String {
    profilis_ffi::redact_sql(sql)
}

/// `CLOCK_MONOTONIC` in ns (the clock of event timestamps; the same clock
/// as `time.monotonic_ns()` on Linux).
#[pyfunction]
pub(crate) fn mono_ns() -> u64 {
    clock::mono_ns()
}

/// The ring's counters as writers see them (a dict), or None before `init`:
/// a consistent snapshot, for which `received + dropped + abandoned + torn +
/// in_flight == claimed`.
#[pyfunction]
pub(crate) fn counters(py: Python<'_>) -> PyResult<Option<Bound<'_, PyDict>>> {
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
