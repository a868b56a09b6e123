//! `profilis._native`: the Python extension module behind the `profilis`
//! package.
//!
//! Every emit is one call into Rust: look the name up in a per-process
//! cache (a Python dict, so a repeated name costs one hash lookup on a
//! string whose hash Python already cached), read the trace context from a
//! Python `ContextVar` (so threads and asyncio tasks each keep their own),
//! and record the event into the ring. Python's GIL serialises the caches;
//! the ring itself is lock-free and shared with every other writer.

//!
//! Modules: `setup` (the ring, counters, clock, SQL redactor), `redact`
//! (message rules and redaction patterns), `names`
//! (the per-process name caches), `context` (the current span in a
//! `ContextVar`, ids and `traceparent`), `emit` (the emit functions),
//! `span` (`use_span` and the request scope of framework adapters),
//! `profiled` (the callable `@profile` makes of a plain function).

#![deny(unsafe_op_in_unsafe_fn)]

mod context;
mod emit;
mod names;
mod profiled;
mod redact;
mod setup;
mod span;

use pyo3::prelude::*;

/// The native half of the `profilis` package.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    context::context_var(m.py())?;
    m.add_class::<context::PySpanContext>()?;
    m.add_class::<context::PySpan>()?;
    m.add_class::<span::RequestScope>()?;
    m.add_class::<profiled::Profiled>()?;
    m.add_function(wrap_pyfunction!(setup::init, m)?)?;
    m.add_function(wrap_pyfunction!(setup::is_initialized, m)?)?;
    m.add_function(wrap_pyfunction!(setup::ring_path, m)?)?;
    m.add_function(wrap_pyfunction!(setup::intern, m)?)?;
    m.add_function(wrap_pyfunction!(emit::emit_req, m)?)?;
    m.add_function(wrap_pyfunction!(emit::emit_fn, m)?)?;
    m.add_function(wrap_pyfunction!(emit::emit_db, m)?)?;
    m.add_function(wrap_pyfunction!(emit::emit_custom, m)?)?;
    m.add_function(wrap_pyfunction!(span::use_span, m)?)?;
    m.add_function(wrap_pyfunction!(span::start_request, m)?)?;
    m.add_function(wrap_pyfunction!(context::get_trace_id, m)?)?;
    m.add_function(wrap_pyfunction!(context::get_span_id, m)?)?;
    m.add_function(wrap_pyfunction!(context::get_parent_span_id, m)?)?;
    m.add_function(wrap_pyfunction!(context::current_context, m)?)?;
    m.add_function(wrap_pyfunction!(context::span_id, m)?)?;
    m.add_function(wrap_pyfunction!(context::new_trace_id, m)?)?;
    m.add_function(wrap_pyfunction!(context::traceparent, m)?)?;
    m.add_function(wrap_pyfunction!(context::parse_traceparent, m)?)?;
    m.add_function(wrap_pyfunction!(context::sampled, m)?)?;
    m.add_function(wrap_pyfunction!(setup::redact_sql, m)?)?;
    m.add_function(wrap_pyfunction!(redact::redact_message, m)?)?;
    m.add_function(wrap_pyfunction!(redact::set_message_rules, m)?)?;
    m.add_function(wrap_pyfunction!(redact::message_rules, m)?)?;
    m.add_function(wrap_pyfunction!(redact::add_message_pattern, m)?)?;
    m.add_function(wrap_pyfunction!(redact::add_sql_pattern, m)?)?;
    m.add_function(wrap_pyfunction!(redact::clear_redaction_patterns, m)?)?;
    m.add_function(wrap_pyfunction!(setup::mono_ns, m)?)?;
    m.add_function(wrap_pyfunction!(setup::counters, m)?)?;
    m.add("ABI_VERSION", profilis_ffi::ABI_VERSION)?;
    Ok(())
}
