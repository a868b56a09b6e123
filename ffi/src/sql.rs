//! SQL redaction for C callers: the literals of a statement become `?`
//! before its text is interned as a DB event's name.

use crate::bridge::redact_sql;
use crate::guard::{checked, Promise};
use crate::status::Status;
use std::ffi::c_char;

/// Redacts the literals of an SQL statement (`sql[..sql_len]`, UTF-8):
/// numbers, strings, double-quoted text where a value can stand (SQLite and
/// MySQL read `"..."` as a string there) and IN lists become `?`, so
/// queries that differ only in their values share one name and no value
/// reaches the ring (see `profilis::db::redact`). Writes the
/// result to `out` (NUL-terminated when `out_cap` leaves room) and its
/// length to `*out_len`; returns `PROFILIS_ERR_BUFFER_TOO_SMALL`, writing
/// nothing to `out`, when `out_cap` is below that length (call with
/// `out = NULL, out_cap = 0` to learn it).
///
/// # Safety
/// `sql` is readable for `sql_len` bytes; a non-NULL `out` is writable for
/// `out_cap` bytes; a non-NULL `out_len` is writable.
#[no_mangle]
pub unsafe extern "C" fn profilis_redact_sql(
    sql: *const c_char,
    sql_len: usize,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> Status {
    // SAFETY: the caller keeps this function's contract (above).
    checked(unsafe { Promise::new() }, |call| {
        let sql = call.text(sql, sql_len, "sql")?;
        call.copy_out(redact_sql(sql).as_bytes(), out, out_cap, out_len)
    })
}
