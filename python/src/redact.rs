//! Redaction settings: the built-in message rules and the user's patterns
//! for messages and SQL, shared with every Rust writer in the process
//! (`profilis::redact`).

use crate::names::forget_queries;
use profilis::redact::{self, MessageRules};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// `text` as an exception message is stored: the built-in rules in force
/// (digits, e-mail addresses, quoted values by default) and the message
/// patterns applied.
#[pyfunction]
pub(crate) fn redact_message(text: &str) -> String {
    redact::message(text).into_owned()
}

/// Chooses the built-in message rules: `"all"` (the default), `"off"`, or
/// a comma-separated list of `digits`, `emails`, `quoted`. Raises
/// ValueError for anything else.
#[pyfunction]
pub(crate) fn set_message_rules(rules: &str) -> PyResult<()> {
    let rules: MessageRules = rules.parse().map_err(PyValueError::new_err)?;
    redact::set_message_rules(rules);
    Ok(())
}

/// The built-in message rules in force, as `set_message_rules` takes them
/// (`"all"`, `"off"` or a list).
#[pyfunction]
pub(crate) fn message_rules() -> String {
    let rules = redact::message_rules();
    if rules == MessageRules::ALL {
        return "all".into();
    }
    let names: Vec<&str> = [
        (rules.digits, "digits"),
        (rules.emails, "emails"),
        (rules.quoted, "quoted"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if names.is_empty() {
        "off".into()
    } else {
        names.join(",")
    }
}

/// Adds a regular expression (`regex-lite` syntax) whose matches in an
/// exception message become `?`. Raises ValueError for a pattern that does
/// not compile, is over 1024 bytes, or is one too many (64).
#[pyfunction]
pub(crate) fn add_message_pattern(pattern: &str) -> PyResult<()> {
    redact::add_message_pattern(pattern).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Adds a regular expression whose matches in the redacted text of an SQL
/// statement become `?`. Raises ValueError as `add_message_pattern` does.
#[pyfunction]
pub(crate) fn add_sql_pattern(py: Python<'_>, pattern: &str) -> PyResult<()> {
    redact::add_sql_pattern(pattern).map_err(|e| PyValueError::new_err(e.to_string()))?;
    forget_queries(py);
    Ok(())
}

/// Removes every message and SQL pattern (the built-in rules stay).
#[pyfunction]
pub(crate) fn clear_redaction_patterns(py: Python<'_>) {
    redact::clear_patterns();
    forget_queries(py);
}
