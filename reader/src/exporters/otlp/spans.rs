//! Span records to OTLP trace messages, following the OpenTelemetry
//! semantic conventions for HTTP server, database client and code spans.
//!
//! | event | span kind | span name | attributes |
//! |---|---|---|---|
//! | REQ | SERVER | `METHOD route` (`route` without a method) | `http.route`, `http.request.method`, `http.response.status_code`, `http.request.body.size`, `http.response.body.size` (sizes only when non-zero) |
//! | FN | INTERNAL | the function name | `code.function.name` |
//! | DB | CLIENT | `OPERATION table` parsed from the redacted text (`SELECT users`), else the text cut to 64 characters | `db.query.text` (redacted), `db.response.returned_rows`, `db.operation.name`, `db.collection.name` |
//!
//! Every span also gets `process.pid` and `thread.id`. An error event gets
//! status ERROR (with the exception message, if any), `error.type` (the
//! exception type; else the HTTP status code of a 5xx; else `_OTHER`) and,
//! when an exception was recorded, an `exception` span event with
//! `exception.type` and `exception.message`.
//!
//! Ids: the event's trace, span and parent span ids. An event without a
//! trace id (recorded outside any span context) becomes the root span of a
//! fresh random trace id; one without a span id gets a fresh span id.
//!
//! Spans are grouped into one `ResourceSpans` per service: `service.name`
//! is the writer's service name (`RingOptions::service`), else `profilis`;
//! with `host.name` and `telemetry.sdk.*`.

use super::{Chunk, Def, SpanRecord};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use profilis::record::{FLAG_ERROR, FLAG_SAMPLED};
use profilis::{Kind, Method, StrId};
use std::collections::HashMap;
use std::sync::Arc;

/// `service.name` of spans whose writer set no service.
pub const DEFAULT_SERVICE: &str = "profilis";
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

#[derive(Default)]
struct RingTexts {
    names: HashMap<u32, Arc<str>>,
    services: HashMap<u16, Option<Arc<str>>>,
}

/// The sender's side of the name tables, and the conversion.
pub struct SpanConverter {
    rings: HashMap<u32, RingTexts>,
    host: String,
    resources: HashMap<Arc<str>, Resource>,
    default_service: Arc<str>,
    unknown: Arc<str>,
    rng: u64,
}

/// Spans of one export request, by service.
#[derive(Default)]
pub struct Grouped {
    services: Vec<(Arc<str>, Vec<Span>)>,
    /// Spans in the request.
    pub spans: usize,
}

impl SpanConverter {
    /// A converter labelling resources with `host`.
    pub fn new(host: &str) -> SpanConverter {
        let seed = crate::timefmt::now_ns() ^ (u64::from(std::process::id()) << 32);
        SpanConverter {
            rings: HashMap::new(),
            host: host.to_string(),
            resources: HashMap::new(),
            default_service: Arc::from(DEFAULT_SERVICE),
            unknown: Arc::from("<unknown>"),
            rng: seed | 1,
        }
    }

    /// Learns the texts of a chunk and converts its spans into `out`.
    pub fn add_chunk(&mut self, chunk: &Chunk, out: &mut Grouped) {
        let texts = self.rings.entry(chunk.slot).or_default();
        for def in &chunk.defs {
            match def {
                Def::Name(id, text) => {
                    texts.names.insert(id.0, text.clone());
                }
                Def::Service(writer, service) => {
                    texts.services.insert(*writer, service.clone());
                }
            }
        }
        let texts = &self.rings[&chunk.slot];
        for record in &chunk.spans {
            let service = texts
                .services
                .get(&record.writer)
                .and_then(|s| s.clone())
                .unwrap_or_else(|| self.default_service.clone());
            let name = texts
                .names
                .get(&record.name.0)
                .cloned()
                .unwrap_or_else(|| self.unknown.clone());
            let exception_type = (record.exception_type != StrId::NONE).then(|| {
                texts
                    .names
                    .get(&record.exception_type.0)
                    .cloned()
                    .unwrap_or_else(|| self.unknown.clone())
            });
            let span = convert(record, &name, exception_type.as_deref(), &mut self.rng);
            let at = match out.services.iter().position(|(s, _)| *s == service) {
                Some(i) => i,
                None => {
                    out.services.push((service, Vec::new()));
                    out.services.len() - 1
                }
            };
            out.services[at].1.push(span);
            out.spans += 1;
        }
    }

    /// The export request of the grouped spans (one `ResourceSpans` per
    /// service).
    pub fn request(&mut self, grouped: Grouped) -> ExportTraceServiceRequest {
        let resource_spans = grouped
            .services
            .into_iter()
            .map(|(service, spans)| {
                let resource = self
                    .resources
                    .entry(service.clone())
                    .or_insert_with(|| resource(&service, &self.host, &[]))
                    .clone();
                ResourceSpans {
                    resource: Some(resource),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(scope()),
                        spans,
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                }
            })
            .collect();
        ExportTraceServiceRequest { resource_spans }
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

/// Whether a record is an error (flagged, or a request answered with 5xx),
/// as the statistics count it.
pub fn is_error(r: &SpanRecord) -> bool {
    r.flags & FLAG_ERROR != 0 || (r.kind == Kind::Req && r.status >= 500)
}

/// One record as an OTLP span.
pub fn convert(r: &SpanRecord, name: &str, exception_type: Option<&str>, rng: &mut u64) -> Span {
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
    let mut attributes = Vec::with_capacity(9);
    let (kind, span_name) = match r.kind {
        Kind::Req => {
            attributes.push(kv_str("http.route", name));
            if r.method != Method::None {
                attributes.push(kv_str("http.request.method", r.method.as_str()));
            }
            if r.status != 0 {
                attributes.push(kv_int("http.response.status_code", i64::from(r.status)));
            }
            if r.value != 0 {
                attributes.push(kv_int("http.request.body.size", clamp(r.value)));
            }
            if r.value2 != 0 {
                attributes.push(kv_int("http.response.body.size", clamp(r.value2)));
            }
            let span_name = if r.method == Method::None {
                name.to_string()
            } else {
                format!("{} {name}", r.method.as_str())
            };
            (span::SpanKind::Server, span_name)
        }
        Kind::Db => {
            attributes.push(kv_str("db.query.text", name));
            attributes.push(kv_int("db.response.returned_rows", clamp(r.value)));
            let summary = db_summary(name);
            let span_name = match summary {
                Some((operation, Some(table))) => {
                    attributes.push(kv_str("db.operation.name", operation.as_str()));
                    attributes.push(kv_str("db.collection.name", table));
                    format!("{operation} {table}")
                }
                Some((operation, None)) => {
                    attributes.push(kv_str("db.operation.name", operation.as_str()));
                    truncate_chars(name, DB_NAME_CHARS)
                }
                None => truncate_chars(name, DB_NAME_CHARS),
            };
            (span::SpanKind::Client, span_name)
        }
        Kind::Fn | Kind::Custom => {
            attributes.push(kv_str("code.function.name", name));
            (span::SpanKind::Internal, name.to_string())
        }
    };
    attributes.push(kv_int("process.pid", i64::from(r.pid)));
    attributes.push(kv_int("thread.id", i64::from(r.tid)));
    let error = is_error(r);
    let mut events = Vec::new();
    let mut status = None;
    if error {
        let error_type = match exception_type {
            Some(t) => t.to_string(),
            None if r.kind == Kind::Req && r.status >= 500 => r.status.to_string(),
            None => "_OTHER".to_string(),
        };
        attributes.push(kv_str("error.type", error_type));
        status = Some(Status {
            message: r
                .message
                .as_deref()
                .or(exception_type)
                .unwrap_or_default()
                .to_string(),
            code: status::StatusCode::Error as i32,
        });
    }
    if exception_type.is_some() || r.message.is_some() {
        let mut exception = Vec::with_capacity(2);
        if let Some(t) = exception_type {
            exception.push(kv_str("exception.type", t));
        }
        if let Some(m) = &r.message {
            exception.push(kv_str("exception.message", &**m));
        }
        events.push(span::Event {
            time_unix_nano: r.end_ns,
            name: "exception".to_string(),
            attributes: exception,
            dropped_attributes_count: 0,
        });
    }
    Span {
        trace_id: trace_id.to_be_bytes().to_vec(),
        span_id: span_id.to_be_bytes().to_vec(),
        trace_state: String::new(),
        parent_span_id: if r.parent_span_id == 0 {
            Vec::new()
        } else {
            r.parent_span_id.to_be_bytes().to_vec()
        },
        flags: u32::from(r.flags & FLAG_SAMPLED != 0),
        name: span_name,
        kind: kind as i32,
        start_time_unix_nano: r.end_ns.saturating_sub(r.dur_ns),
        end_time_unix_nano: r.end_ns,
        attributes,
        dropped_attributes_count: 0,
        events,
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status,
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The first `max` characters of `text` (with `…` when cut).
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// The operation (upper case) and the table of a SQL statement, as far as
/// its first words tell: `SELECT … FROM t`, `INSERT INTO t`, `UPDATE t`,
/// `DELETE FROM t`; other statements give the operation only.
pub fn db_summary(sql: &str) -> Option<(String, Option<&str>)> {
    let mut words = sql
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .filter(|w| !w.is_empty());
    let first = words.next()?;
    if !first.bytes().all(|b| b.is_ascii_alphabetic()) || first.len() > 16 {
        return None;
    }
    let operation = first.to_ascii_uppercase();
    let mut table_after = |keyword: &str| {
        words
            .by_ref()
            .find(|w| w.eq_ignore_ascii_case(keyword))
            .and_then(|_| words.next())
    };
    let table = match operation.as_str() {
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
mod tests {
    use super::*;

    fn record(kind: Kind) -> SpanRecord {
        SpanRecord {
            trace_id: 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10,
            span_id: 0x1112_1314_1516_1718,
            parent_span_id: 0x2122_2324_2526_2728,
            end_ns: 1_700_000_000_000_000_000,
            dur_ns: 1_500_000,
            value: 0,
            value2: 0,
            message: None,
            name: StrId(1),
            exception_type: StrId::NONE,
            pid: 42,
            tid: 7,
            status: 0,
            writer: 0,
            kind,
            method: Method::None,
            flags: 0,
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
        r.value = 10;
        r.value2 = 20;
        r.message = Some(Arc::from("upstream timed out"));
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
        assert_eq!(attr(&s, "process.pid"), Some(&IntValue(42)));
        assert_eq!(attr(&s, "thread.id"), Some(&IntValue(7)));
        let status = s.status.as_ref().unwrap();
        assert_eq!(status.code, status::StatusCode::Error as i32);
        assert_eq!(status.message, "upstream timed out");
        assert_eq!(s.events[0].name, "exception");
        assert_eq!(s.events[0].attributes.len(), 2);
    }

    #[test]
    fn plain_5xx_and_missing_ids() {
        let mut r = record(Kind::Req);
        r.status = 500;
        r.trace_id = 0;
        r.span_id = 0;
        r.parent_span_id = 0;
        let mut rng = 7;
        let a = convert(&r, "/x", None, &mut rng);
        let b = convert(&r, "/x", None, &mut rng);
        assert_eq!(a.name, "/x", "no method: the route alone");
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
            let got = got.as_ref().map(|(o, t)| (o.as_str(), *t));
            assert_eq!(got, want, "{sql}");
        }
        assert_eq!(truncate_chars("héllo", 2), "hé…");
        assert_eq!(truncate_chars("hé", 2), "hé");
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
