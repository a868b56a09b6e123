//! Message redaction and the user's redaction patterns for C callers: the
//! same process-wide settings as `profilis::redact`, so Rust, C and Python
//! writers in one process redact alike.

use crate::guard::{checked, Failure, Promise};
use crate::status::Status;
use profilis::redact::{self, MessageRules};
use std::ffi::c_char;

/// Redacts a message `text[..len]` (UTF-8) as `profilis_message` stores it:
/// the built-in rules in force (digits, e-mail addresses and quoted values
/// by default) and the message patterns. Writes the result to `out`
/// (NUL-terminated when `out_cap` leaves room) and its length to
/// `*out_len`; `PROFILIS_ERR_BUFFER_TOO_SMALL`, writing nothing to `out`,
/// when `out_cap` is below that length.
///
/// # Safety
/// `text` is readable for `len` bytes; a non-NULL `out` is writable for
/// `out_cap` bytes; a non-NULL `out_len` is writable.
#[no_mangle]
pub unsafe extern "C" fn profilis_redact_message(
    text: *const c_char,
    len: usize,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        let text = call.text(text, len, "text")?;
        call.copy_out(redact::message(text).as_bytes(), out, out_cap, out_len)
    })
}

/// Chooses the built-in message rules from `rules[..len]`: `all` (the
/// default), `off`, or a comma-separated list of `digits`, `emails`,
/// `quoted`. `PROFILIS_ERR_INVALID` for anything else (the rules in force
/// stay).
///
/// # Safety
/// `rules` is readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn profilis_redact_set_message_rules(
    rules: *const c_char,
    len: usize,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        let rules: MessageRules = call
            .text(rules, len, "rules")?
            .parse()
            .map_err(Failure::invalid)?;
        redact::set_message_rules(rules);
        Ok(Status::Ok)
    })
}

/// Adds a regular expression `pattern[..len]` (`regex-lite` syntax) whose
/// matches in a message become `?`. `PROFILIS_ERR_INVALID` for a pattern
/// that does not compile, is over 1024 bytes, or is one too many (64).
///
/// # Safety
/// `pattern` is readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn profilis_redact_add_message_pattern(
    pattern: *const c_char,
    len: usize,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        let pattern = call.text(pattern, len, "pattern")?;
        redact::add_message_pattern(pattern).map_err(|e| Failure::invalid(e.to_string()))?;
        Ok(Status::Ok)
    })
}

/// Adds a regular expression `pattern[..len]` whose matches in the
/// redacted text of an SQL statement become `?` (`profilis_redact_sql`).
/// Errors as `profilis_redact_add_message_pattern`.
///
/// # Safety
/// `pattern` is readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn profilis_redact_add_sql_pattern(
    pattern: *const c_char,
    len: usize,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        let pattern = call.text(pattern, len, "pattern")?;
        redact::add_sql_pattern(pattern).map_err(|e| Failure::invalid(e.to_string()))?;
        Ok(Status::Ok)
    })
}

/// Removes every message and SQL pattern (the built-in rules stay).
#[no_mangle]
pub extern "C" fn profilis_redact_clear_patterns() -> Status {
    // SAFETY: this function takes no pointer: the promise holds trivially.
    checked(unsafe { Promise::new() }, |_| {
        redact::clear_patterns();
        Ok(Status::Ok)
    })
}
