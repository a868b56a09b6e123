//! Names and SQL texts to string ids, cached per process in Python dicts.

use profilis::{Ring, StrId};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};

/// Names cached per process; past this many, names are interned without
/// caching (the ring's own table is bounded too).
const NAME_CACHE_MAX: usize = 16_384;
/// Raw SQL texts cached (raw text -> id of the redacted text).
const QUERY_CACHE_MAX: usize = 4_096;

static NAMES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
static QUERIES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

fn cache<'py>(py: Python<'py>, cell: &'static PyOnceLock<Py<PyDict>>) -> &'py Bound<'py, PyDict> {
    cell.get_or_init(py, || PyDict::new(py).unbind()).bind(py)
}

/// The id of `name`, interned once per process.
#[inline]
pub(crate) fn name_id(py: Python<'_>, ring: &Ring, name: &Bound<'_, PyString>) -> PyResult<StrId> {
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

/// Forgets the ids of redacted SQL texts, after the SQL patterns changed.
pub(crate) fn forget_queries(py: Python<'_>) {
    cache(py, &QUERIES).clear();
}

/// The id of the redacted text of `sql`, redacted once per distinct text.
pub(crate) fn query_id(py: Python<'_>, ring: &Ring, sql: &Bound<'_, PyString>) -> PyResult<StrId> {
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
