//! What the C ABI takes from the instrumentation layer of `profilis`: SQL
//! literal redaction and W3C `traceparent` parsing and formatting. One
//! implementation serves Rust, C and Python alike.

use profilis::context::SpanContext;

/// Length of a version-00 `traceparent` value.
pub use profilis::context::TRACEPARENT_LEN;

/// Redacts the literals of an SQL statement (numbers, strings, IN lists
/// become `?`), with the same rules as `profilis::db::redact`.
pub fn redact_sql(sql: &str) -> String {
    profilis::db::redact(sql)
}

/// Parses a `traceparent` header value into the remote parent's context.
pub fn parse_traceparent(header: &[u8]) -> Result<SpanContext, String> {
    SpanContext::from_traceparent_bytes(header).map_err(|e| e.to_string())
}

/// Formats `ctx` as a version-00 `traceparent` value.
pub fn format_traceparent(ctx: &SpanContext) -> String {
    ctx.to_traceparent()
}
