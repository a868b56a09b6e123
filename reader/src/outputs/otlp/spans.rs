//! Span records to OTLP trace messages, following the OpenTelemetry
//! semantic conventions for HTTP server, database client and code spans.
//!
//! | event | span kind | span name | attributes |
//! |---|---|---|---|
//! | REQ | SERVER | `METHOD route` (`route` without a method) | `http.route`, `http.request.method`, `url.scheme` (`http`), `url.path` (the route template, when it is a path), `http.response.status_code`, `http.request.body.size`, `http.response.body.size` (sizes only when non-zero) |
//! | FN | INTERNAL | the function name | `code.function.name` |
//! | DB | CLIENT | `OPERATION table` parsed from the redacted text (`SELECT users`), else the text cut to 64 characters | `db.system.name` (`other_sql`), `db.query.text` (redacted), `db.response.returned_rows`, `db.operation.name`, `db.collection.name` |
//!
//! A request event records the route template only, never the path that
//! was asked for (which holds ids and other personal data) nor the scheme:
//! `url.path` carries the template (a scrubbed path, as the conventions
//! allow), and `url.scheme` is `http`, the application's own listener
//! (TLS is terminated in front of it). A DB event records the query text,
//! not the database product: `db.system.name` is `other_sql`, the
//! conventions' value for a SQL database not otherwise identified.
//!
//! Every span also gets `thread.id`; `process.pid` is on the resource. An
//! error event gets
//! status ERROR (with the exception message, if any), `error.type` (the
//! exception type; else the HTTP status code of a 5xx; else `_OTHER`) and,
//! when an exception was recorded, an `exception` span event with
//! `exception.type`, `exception.message` and `exception.stacktrace` (the
//! stack trace the writer attached, as the JSONL `stack` field).
//!
//! Ids: the event's trace, span and parent span ids. An event without a
//! trace id (recorded outside any span context) becomes the root span of a
//! fresh random trace id; one without a span id gets a fresh span id.
//!
//! Spans are grouped into one `ResourceSpans` per writer process (service
//! and pid): `service.name` is the writer's service name
//! (`RingOptions::service`), else `profilis`; with `process.pid`,
//! `host.name` and `telemetry.sdk.*`. Resource and scope spans carry
//! [`SCHEMA_URL`], the version of the conventions these names follow.

use super::SpanRecord;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, status, Span, Status};
use profilis::{Kind, Method};

/// `service.name` of spans whose writer set no service.
pub const DEFAULT_SERVICE: &str = "profilis";
/// The semantic conventions version the attribute names follow
/// (`schema_url` of resource and scope spans and metrics).
pub const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.34.0";
/// `db.system.name` of DB spans: the event does not say which database.
pub const DB_SYSTEM: &str = "other_sql";
/// `url.scheme` of request spans: the event does not record it.
pub const URL_SCHEME: &str = "http";
/// Longest DB span name made from the query text, in characters.
pub const DB_NAME_CHARS: usize = 64;

/// A string attribute.
pub fn kv_str(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

/// An integer attribute.
pub fn kv_int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..KeyValue::default()
    }
}

/// The resource attributes every message of this reader carries, plus
/// `service.name`.
pub fn resource(service: &str, host: &str, extra: &[KeyValue]) -> Resource {
    let mut attributes = vec![
        kv_str("service.name", service),
        kv_str("host.name", host),
        kv_str("telemetry.sdk.name", "profilis"),
        kv_str("telemetry.sdk.language", "rust"),
        kv_str("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
    ];
    attributes.extend_from_slice(extra);
    Resource {
        attributes,
        ..Resource::default()
    }
}

/// The instrumentation scope of everything Profilis exports.
pub fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "profilis".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        ..InstrumentationScope::default()
    }
}

/// The host name (`gethostname`), `unknown` if it cannot be read.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(name) if !name.is_empty() => name.to_string(),
        _ => "unknown".to_string(),
    }
}

fn next_random(state: &mut u64) -> u64 {
    // splitmix64: distinct non-zero ids for spans recorded without any.
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn nonzero_random(state: &mut u64) -> u64 {
    loop {
        let v = next_random(state);
        if v != 0 {
            return v;
        }
    }
}

/// One record as an OTLP span.
pub fn convert(r: &SpanRecord, name: &str, exception_type: Option<&str>, rng: &mut u64) -> Span {
    let mut span = Span::default();
    fill(&mut span, r, name, exception_type, rng);
    span
}

/// Writes a record into `span`, reusing its strings and vectors.
pub fn fill(
    span: &mut Span,
    r: &SpanRecord,
    name: &str,
    exception_type: Option<&str>,
    rng: &mut u64,
) {
    let trace_id = if r.trace_id != 0 {
        r.trace_id
    } else {
        (u128::from(nonzero_random(rng)) << 64) | u128::from(next_random(rng))
    };
    let span_id = if r.span_id != 0 {
        r.span_id
    } else {
        nonzero_random(rng)
    };
    set_bytes(&mut span.trace_id, &trace_id.to_be_bytes());
    set_bytes(&mut span.span_id, &span_id.to_be_bytes());
    if r.parent_span_id == 0 {
        span.parent_span_id.clear();
    } else {
        set_bytes(&mut span.parent_span_id, &r.parent_span_id.to_be_bytes());
    }
    span.trace_state.clear();
    span.flags = u32::from(r.sampled);
    span.start_time_unix_nano = r.end_ns.saturating_sub(r.dur_ns);
    span.end_time_unix_nano = r.end_ns;
    span.dropped_attributes_count = 0;
    span.dropped_events_count = 0;
    span.links.clear();
    span.dropped_links_count = 0;
    span.name.clear();
    let mut attrs = Attrs {
        list: &mut span.attributes,
        len: 0,
    };
    let kind = match r.kind {
        Kind::Req => {
            attrs.str("http.route", name);
            if r.method != Method::None {
                attrs.str("http.request.method", r.method.as_str());
                span.name.push_str(r.method.as_str());
                span.name.push(' ');
            }
            attrs.str("url.scheme", URL_SCHEME);
            if name.starts_with('/') {
                attrs.str("url.path", name);
            }
            span.name.push_str(name);
            if r.status != 0 {
                attrs.int("http.response.status_code", i64::from(r.status));
            }
            if r.value != 0 {
                attrs.int("http.request.body.size", clamp(r.value));
            }
            if r.value2 != 0 {
                attrs.int("http.response.body.size", clamp(r.value2));
            }
            span::SpanKind::Server
        }
        Kind::Db => {
            attrs.str("db.system.name", DB_SYSTEM);
            attrs.str("db.query.text", name);
            attrs.int("db.response.returned_rows", clamp(r.value));
            match db_summary(name) {
                Some((operation, Some(table))) => {
                    attrs.str("db.operation.name", &operation);
                    attrs.str("db.collection.name", table);
                    span.name.push_str(&operation);
                    span.name.push(' ');
                    span.name.push_str(table);
                }
                Some((operation, None)) => {
                    attrs.str("db.operation.name", &operation);
                    push_truncated(&mut span.name, name, DB_NAME_CHARS);
                }
                None => push_truncated(&mut span.name, name, DB_NAME_CHARS),
            }
            span::SpanKind::Client
        }
        Kind::Fn | Kind::Custom => {
            attrs.str("code.function.name", name);
            span.name.push_str(name);
            span::SpanKind::Internal
        }
    };
    span.kind = kind as i32;
    attrs.int("thread.id", i64::from(r.tid));
    span.status = None;
    if r.error {
        let mut code = itoa::Buffer::new();
        let error_type = match exception_type {
            Some(t) => t,
            None if r.kind == Kind::Req && r.status >= 500 => code.format(r.status),
            None => "_OTHER",
        };
        attrs.str("error.type", error_type);
        span.status = Some(Status {
            message: r
                .message
                .as_deref()
                .or(exception_type)
                .unwrap_or_default()
                .to_string(),
            code: status::StatusCode::Error as i32,
        });
    }
    attrs.finish();
    span.events.clear();
    if exception_type.is_some() || r.message.is_some() {
        let mut exception = Vec::with_capacity(3);
        if let Some(t) = exception_type {
            exception.push(kv_str("exception.type", t));
        }
        if let Some(m) = &r.message {
            exception.push(kv_str("exception.message", &**m));
        }
        if let Some(stack) = &r.stack {
            exception.push(kv_str("exception.stacktrace", &**stack));
        }
        span.events.push(span::Event {
            time_unix_nano: r.end_ns,
            name: "exception".to_string(),
            attributes: exception,
            dropped_attributes_count: 0,
        });
    }
}

fn set_bytes(v: &mut Vec<u8>, bytes: &[u8]) {
    v.clear();
    v.extend_from_slice(bytes);
}

/// Every attribute key [`fill`] writes.
const SPAN_KEYS: [&str; 16] = [
    "http.route",
    "http.request.method",
    "url.scheme",
    "url.path",
    "http.response.status_code",
    "http.request.body.size",
    "http.response.body.size",
    "db.system.name",
    "db.query.text",
    "db.response.returned_rows",
    "db.operation.name",
    "db.collection.name",
    "code.function.name",
    "thread.id",
    "error.type",
    "",
];

/// Whether `current`, a key that [`fill`] wrote earlier (one of
/// [`SPAN_KEYS`], or empty in a new entry), is `key`. Length, first and
/// last byte tell the keys of that set apart (a unit test checks it), which
/// spares a string comparison per attribute.
#[inline]
fn same_key(current: &str, key: &'static str) -> bool {
    let (a, b) = (current.as_bytes(), key.as_bytes());
    a.len() == b.len() && a.first() == b.first() && a.last() == b.last()
}

/// Fills an attribute list in place: entry `len` is overwritten (its key
/// kept when it is already right), and the list is cut to the entries
/// written by [`Attrs::finish`].
struct Attrs<'a> {
    list: &'a mut Vec<KeyValue>,
    len: usize,
}

impl Attrs<'_> {
    fn slot(&mut self, key: &'static str) -> &mut Option<any_value::Value> {
        debug_assert!(SPAN_KEYS.contains(&key), "{key} missing from SPAN_KEYS");
        if self.len == self.list.len() {
            self.list.push(KeyValue::default());
        }
        let kv = &mut self.list[self.len];
        self.len += 1;
        if !same_key(&kv.key, key) {
            kv.key.clear();
            kv.key.push_str(key);
        }
        &mut kv.value.get_or_insert_with(AnyValue::default).value
    }

    fn str(&mut self, key: &'static str, value: &str) {
        match self.slot(key) {
            Some(any_value::Value::StringValue(s)) => {
                s.clear();
                s.push_str(value);
            }
            other => *other = Some(any_value::Value::StringValue(value.to_string())),
        }
    }

    fn int(&mut self, key: &'static str, value: i64) {
        *self.slot(key) = Some(any_value::Value::IntValue(value));
    }

    fn finish(self) {
        self.list.truncate(self.len);
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The first `max` characters of `text` (with `…` when cut).
pub fn truncate_chars(text: &str, max: usize) -> String {
    let mut out = String::new();
    push_truncated(&mut out, text, max);
    out
}

fn push_truncated(out: &mut String, text: &str, max: usize) {
    match text.char_indices().nth(max) {
        Some((at, _)) => {
            out.push_str(&text[..at]);
            out.push('…');
        }
        None => out.push_str(text),
    }
}

/// The operation (upper case) and the table of a SQL statement, as far as
/// its first words tell: `SELECT … FROM t`, `INSERT INTO t`, `UPDATE t`,
/// `DELETE FROM t`; other statements give the operation only.
pub fn db_summary(sql: &str) -> Option<(std::borrow::Cow<'static, str>, Option<&str>)> {
    let mut words = sql
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .filter(|w| !w.is_empty());
    let first = words.next()?;
    if !first.bytes().all(|b| b.is_ascii_alphabetic()) || first.len() > 16 {
        return None;
    }
    const KNOWN: [&str; 12] = [
        "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN", "COMMIT", "ROLLBACK", "WITH",
        "CREATE", "DROP", "ALTER",
    ];
    let operation: std::borrow::Cow<'static, str> =
        match KNOWN.iter().find(|k| k.eq_ignore_ascii_case(first)) {
            Some(k) => std::borrow::Cow::Borrowed(k),
            None => std::borrow::Cow::Owned(first.to_ascii_uppercase()),
        };
    let mut table_after = |keyword: &str| {
        words
            .by_ref()
            .find(|w| w.eq_ignore_ascii_case(keyword))
            .and_then(|_| words.next())
    };
    let table = match &*operation {
        "SELECT" | "DELETE" => table_after("FROM"),
        "INSERT" | "REPLACE" => table_after("INTO"),
        "UPDATE" => words.next(),
        _ => None,
    };
    let table = table.and_then(table_name);
    Some((operation, table))
}

fn table_name(word: &str) -> Option<&str> {
    let word = word.split('(').next().unwrap_or_default();
    let word = word.trim_matches(|c| c == '"' || c == '`' || c == '[' || c == ']');
    let valid = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'$');
    valid.then_some(word)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use profilis::StrId;
    use std::sync::Arc;

    /// A record of `kind` with every id and time set.
    pub(crate) fn record(kind: Kind) -> SpanRecord {
        SpanRecord {
            trace_id: 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10,
            span_id: 0x1112_1314_1516_1718,
            parent_span_id: 0x2122_2324_2526_2728,
            end_ns: 1_700_000_000_000_000_000,
            dur_ns: 1_500_000,
            value: 0,
            value2: 0,
            message: None,
            stack: None,
            name: StrId(1),
            exception_type: StrId::NONE,
            pid: 42,
            tid: 7,
            status: 0,
            writer: 0,
            kind,
            method: Method::None,
            error: false,
            sampled: false,
        }
    }

    fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a any_value::Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    #[test]
    fn request_span_follows_http_conventions() {
        let mut r = record(Kind::Req);
        r.method = Method::Post;
        r.status = 503;
        r.error = true;
        r.value = 10;
        r.value2 = 20;
        r.message = Some(Arc::from("upstream timed out"));
        r.stack = Some(Arc::from(
            "Traceback (most recent call last):\n  File \"a.py\", line 1, in f\n",
        ));
        let mut rng = 1;
        let s = convert(&r, "/api/orders/{id}", Some("TimeoutError"), &mut rng);
        assert_eq!(s.name, "POST /api/orders/{id}");
        assert_eq!(s.kind, span::SpanKind::Server as i32);
        assert_eq!(hex(&s.trace_id), "0102030405060708090a0b0c0d0e0f10");
        assert_eq!(hex(&s.span_id), "1112131415161718");
        assert_eq!(hex(&s.parent_span_id), "2122232425262728");
        assert_eq!(s.end_time_unix_nano - s.start_time_unix_nano, 1_500_000);
        use any_value::Value::{IntValue, StringValue};
        assert_eq!(
            attr(&s, "http.route"),
            Some(&StringValue("/api/orders/{id}".into()))
        );
        assert_eq!(
            attr(&s, "http.request.method"),
            Some(&StringValue("POST".into()))
        );
        assert_eq!(attr(&s, "http.response.status_code"), Some(&IntValue(503)));
        assert_eq!(attr(&s, "http.request.body.size"), Some(&IntValue(10)));
        assert_eq!(attr(&s, "http.response.body.size"), Some(&IntValue(20)));
        assert_eq!(
            attr(&s, "error.type"),
            Some(&StringValue("TimeoutError".into()))
        );
        assert_eq!(attr(&s, "url.scheme"), Some(&StringValue("http".into())));
        assert_eq!(
            attr(&s, "url.path"),
            Some(&StringValue("/api/orders/{id}".into()))
        );
        assert_eq!(attr(&s, "process.pid"), None, "on the resource");
        assert_eq!(attr(&s, "thread.id"), Some(&IntValue(7)));
        let status = s.status.as_ref().unwrap();
        assert_eq!(status.code, status::StatusCode::Error as i32);
        assert_eq!(status.message, "upstream timed out");
        assert_eq!(s.events[0].name, "exception");
        let keys: Vec<&str> = s.events[0]
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "exception.type",
                "exception.message",
                "exception.stacktrace"
            ]
        );
        assert_eq!(
            s.events[0].attributes[2]
                .value
                .as_ref()
                .and_then(|v| v.value.clone()),
            Some(StringValue(
                "Traceback (most recent call last):\n  File \"a.py\", line 1, in f\n".into()
            ))
        );
    }

    #[test]
    fn plain_5xx_and_missing_ids() {
        let mut r = record(Kind::Req);
        r.status = 500;
        r.error = true;
        r.trace_id = 0;
        r.span_id = 0;
        r.parent_span_id = 0;
        let mut rng = 7;
        let a = convert(&r, "/x", None, &mut rng);
        let b = convert(&r, "/x", None, &mut rng);
        assert_eq!(a.name, "/x", "no method: the route alone");
        let not_a_path = convert(&r, "grpc.Health/Check", None, &mut rng);
        assert_eq!(attr(&not_a_path, "url.path"), None, "not a URL path");
        assert!(attr(&not_a_path, "url.scheme").is_some());
        assert_eq!(
            attr(&a, "error.type"),
            Some(&any_value::Value::StringValue("500".into()))
        );
        assert!(a.events.is_empty());
        assert_eq!(a.trace_id.len(), 16);
        assert_eq!(a.span_id.len(), 8);
        assert!(a.parent_span_id.is_empty());
        assert_ne!(a.trace_id, b.trace_id, "a fresh trace per event");
        assert!(a.trace_id.iter().any(|&x| x != 0) && a.span_id.iter().any(|&x| x != 0));
        r.status = 404;
        r.error = false;
        let c = convert(&r, "/x", None, &mut rng);
        assert!(c.status.is_none(), "4xx is not a server error");
    }

    #[test]
    fn db_and_function_spans() {
        let mut r = record(Kind::Db);
        r.value = 3;
        let mut rng = 1;
        let s = convert(&r, "SELECT * FROM users WHERE id = ?", None, &mut rng);
        assert_eq!(s.name, "SELECT users");
        assert_eq!(s.kind, span::SpanKind::Client as i32);
        assert_eq!(
            attr(&s, "db.system.name"),
            Some(&any_value::Value::StringValue("other_sql".into()))
        );
        assert_eq!(attr(&s, "process.pid"), None);
        assert_eq!(
            attr(&s, "db.response.returned_rows"),
            Some(&any_value::Value::IntValue(3))
        );
        assert_eq!(
            attr(&s, "db.query.text"),
            Some(&any_value::Value::StringValue(
                "SELECT * FROM users WHERE id = ?".into()
            ))
        );
        let long = format!("WITH x AS (SELECT 1) {}", "y".repeat(100));
        let s = convert(&r, &long, None, &mut rng);
        assert_eq!(s.name.chars().count(), DB_NAME_CHARS + 1);
        let f = convert(&record(Kind::Fn), "load_user", None, &mut rng);
        assert_eq!(
            (f.name.as_str(), f.kind),
            ("load_user", span::SpanKind::Internal as i32)
        );
    }

    #[test]
    fn reused_spans_equal_fresh_ones() {
        let mut error = record(Kind::Req);
        error.method = Method::Get;
        error.status = 500;
        error.error = true;
        error.message = Some(Arc::from("boom"));
        let mut db = record(Kind::Db);
        db.value = 9;
        let mut fresh_rng = 5;
        let mut reuse_rng = 5;
        let mut span = Span::default();
        for (r, name, exception) in [
            (&db, "SELECT * FROM t", None),
            (&error, "/a", Some("E")),
            (&record(Kind::Fn), "f", None),
            (&db, "UPDATE u SET x = ?", None),
            (&record(Kind::Req), "/b", None),
        ] {
            fill(&mut span, r, name, exception, &mut reuse_rng);
            assert_eq!(span, convert(r, name, exception, &mut fresh_rng), "{name}");
        }
    }

    #[test]
    fn span_keys_are_told_apart_by_length_and_ends() {
        for (i, a) in SPAN_KEYS.iter().enumerate() {
            for (j, b) in SPAN_KEYS.iter().enumerate() {
                assert_eq!(same_key(a, b), i == j, "{a} / {b}");
            }
        }
    }

    #[test]
    fn sql_summaries() {
        let cases = [
            (
                "select a, b from orders o where x = ?",
                Some(("SELECT", Some("orders"))),
            ),
            (
                "INSERT INTO \"events\"(a, b) VALUES (?, ?)",
                Some(("INSERT", Some("events"))),
            ),
            (
                "UPDATE app.users SET a = ?",
                Some(("UPDATE", Some("app.users"))),
            ),
            ("DELETE FROM t WHERE id IN (?)", Some(("DELETE", Some("t")))),
            ("SELECT * FROM (SELECT 1)", Some(("SELECT", None))),
            ("BEGIN", Some(("BEGIN", None))),
            ("", None),
            ("?", None),
        ];
        for (sql, want) in cases {
            let got = db_summary(sql);
            let got = got.as_ref().map(|(o, t)| (&**o, *t));
            assert_eq!(got, want, "{sql}");
        }
        assert_eq!(truncate_chars("héllo", 2), "hé…");
        assert_eq!(truncate_chars("hé", 2), "hé");
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
