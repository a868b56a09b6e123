//! The known events the OTLP tests write into a ring, so that what
//! arrives at the receiver can be compared with them.
#![allow(dead_code)]

use profilis::record::FLAG_ERROR;
use profilis::{Fields, Kind, Method, Ring, SpanContext};
use std::collections::HashMap;

pub const TRACES: u64 = 40;
pub const ERRORS: u64 = 5;
pub const ORPHANS: u64 = 3;
pub const CUSTOM: u64 = 7;
pub const ROUTES: [&str; 2] = ["/api/orders/{id}", "/api/users/{id}"];
pub const QUERY: &str = "SELECT * FROM orders WHERE id = ?";
pub const SECRET: &str = "Bearer s3cr3t-t0ken-9d1";
/// The semantic conventions version the attribute names follow.
pub const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.34.0";

/// What was written, to compare the export with.
pub struct Emitted {
    /// Request duration per route.
    pub durations: HashMap<String, Vec<u64>>,
}

/// Trace id and the REQ, FN and DB span ids of trace `i`.
pub fn ids(i: u64) -> (u128, u64, u64, u64) {
    let trace = 0xabc0_0000_0000_0000_0000_0000_0000_0000u128 + u128::from(i);
    (trace, 0x1000 + i, 0x2000 + i, 0x3000 + i)
}

/// Writes `TRACES` traces of REQ → FN → DB, `ERRORS` failed requests,
/// `ORPHANS` function events outside any trace and `CUSTOM` custom samples.
pub fn emit_known(ring: &Ring) -> Emitted {
    let mut durations: HashMap<String, Vec<u64>> = HashMap::new();
    for i in 0..TRACES {
        let (trace, req, func, db) = ids(i);
        let route = ROUTES[(i % 2) as usize];
        let dur = 50_000 + i * 120_000;
        durations.entry(route.to_string()).or_default().push(dur);
        let ctx = |span_id, parent_span_id| {
            Some(SpanContext {
                trace_id: trace,
                span_id,
                parent_span_id,
                sampled: true,
            })
        };
        let fields = Fields {
            span: ctx(db, func),
            dur_ns: 20_000,
            value: i % 5,
            ..Fields::default()
        };
        ring.record(Kind::Db, ring.intern(QUERY), &fields);
        let fields = Fields {
            span: ctx(func, req),
            dur_ns: 40_000,
            ..Fields::default()
        };
        ring.record(Kind::Fn, ring.intern("load_order"), &fields);
        let fields = Fields {
            span: ctx(req, 0),
            method: Method::Get,
            status: 200,
            dur_ns: dur,
            value: 100 + i,
            value2: 200 + i,
            ..Fields::default()
        };
        ring.record(Kind::Req, ring.intern(route), &fields);
    }
    for k in 0..ERRORS {
        let dur = 3_000_000 + k;
        durations.entry("/api/pay".into()).or_default().push(dur);
        let fields = Fields {
            span: Some(SpanContext {
                trace_id: 0xeee0 + u128::from(k),
                span_id: 0xe000 + k,
                parent_span_id: 0,
                sampled: true,
            }),
            method: Method::Post,
            status: 503,
            dur_ns: dur,
            flags: FLAG_ERROR,
            exception_type: ring.intern("TimeoutError"),
            message: ring.message(&format!("upstream timed out #{k}")),
            ..Fields::default()
        };
        ring.record(Kind::Req, ring.intern("/api/pay"), &fields);
    }
    for _ in 0..ORPHANS {
        let fields = Fields {
            span: Some(SpanContext::NONE),
            dur_ns: 1_000,
            ..Fields::default()
        };
        ring.record(Kind::Fn, ring.intern("orphan_job"), &fields);
    }
    for k in 0..CUSTOM {
        ring.emit_custom("queue_depth", k as f64);
    }
    Emitted { durations }
}
