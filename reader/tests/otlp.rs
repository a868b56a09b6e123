//! OTLP export as a user runs it: the `profilis-reader` binary drains a ring
//! of known events and sends them to a real OTLP receiver (built on the
//! official protobuf definitions, see `otlp_receiver`), over gRPC and over
//! HTTP; a receiver that is down, then comes back; retryable and final
//! errors. And the Prometheus side of running at scale: the histograms of
//! two readers add up to the histogram of all their events.

mod common;
mod otlp_known;
mod otlp_receiver;

use common::*;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, Metric};
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span};
use otlp_known::*;
use otlp_receiver::{hex, int_attr, string_attr, Protocol, Receiver};
use profilis::Ring;
use profilis_reader::window::durations::BUCKET_BOUNDS_NS;
use serde_json::Value;
use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

fn attrs_of(span: &Span) -> &[opentelemetry_proto::tonic::common::v1::KeyValue] {
    &span.attributes
}

fn run_once_against(protocol: Protocol) {
    let receiver = Receiver::start(protocol);
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("app.ring");
    let ring = ring(&ring_path, 4096);
    let emitted = emit_known(&ring);
    let jsonl = tmp.path().join("jsonl");
    let out = run_reader(
        &[
            ring_path.to_str().unwrap(),
            "--once",
            "--accounting",
            "--jsonl-dir",
            jsonl.to_str().unwrap(),
            "--otlp-endpoint",
            &receiver.endpoint(),
            "--otlp-protocol",
            protocol.flag(),
            "--otlp-header",
            &format!("authorization={SECRET}"),
            "--otlp-batch-size",
            "50",
        ],
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "reader failed: {stderr}");
    assert!(
        !stderr.contains("s3cr3t"),
        "a header value was logged: {stderr}"
    );

    let total_spans = (TRACES * 3 + ERRORS + ORPHANS) as usize;
    let spans = receiver.spans();
    assert_eq!(
        spans.len(),
        total_spans,
        "every REQ/FN/DB event is one span"
    );
    assert_eq!(
        read_lines(&jsonl).len() as u64,
        TRACES * 3 + ERRORS + ORPHANS + CUSTOM,
        "JSONL gets every event as before"
    );
    receiver.with(|r| {
        assert!(r.traces.len() >= total_spans / 50, "batches of at most 50");
        for request in &r.traces {
            let n: usize = request
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .map(|s| s.spans.len())
                .sum();
            assert!(n <= 50, "a request of {n} spans");
            let rs = &request.resource_spans;
            assert_eq!(rs.len(), 1, "one process, one ResourceSpans");
            let res = rs[0].resource.as_ref().unwrap();
            assert_eq!(
                int_attr(&res.attributes, "process.pid"),
                Some(std::process::id() as i64),
                "the writer's pid is on the resource"
            );
            assert_eq!(rs[0].schema_url, SCHEMA_URL);
            assert_eq!(rs[0].scope_spans[0].schema_url, SCHEMA_URL);
            assert_eq!(
                string_attr(&res.attributes, "telemetry.sdk.name").as_deref(),
                Some("profilis")
            );
            assert!(string_attr(&res.attributes, "host.name").is_some_and(|h| !h.is_empty()));
            assert_eq!(
                rs[0].scope_spans[0].scope.as_ref().unwrap().name,
                "profilis"
            );
        }
        assert!(r.authorization.iter().all(|a| a.as_deref() == Some(SECRET)));
        let agent = format!("profilis-reader/{}", env!("CARGO_PKG_VERSION"));
        assert!(
            r.user_agent
                .iter()
                .all(|a| a.as_deref().is_some_and(|a| a.starts_with(&agent))),
            "{:?}",
            r.user_agent
        );
        let last = r.metrics.last().expect("a metrics push");
        assert_eq!(last.resource_metrics[0].schema_url, SCHEMA_URL);
    });
    assert!(spans.iter().all(|(service, _)| service == "test-svc"));

    let by_id: HashMap<String, &Span> = spans.iter().map(|(_, s)| (hex(&s.span_id), s)).collect();
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    for i in 0..TRACES {
        let (trace, req, func, db) = ids(i);
        let get = |id: u64| {
            *by_id
                .get(&format!("{id:016x}"))
                .unwrap_or_else(|| panic!("span {id:x} missing"))
        };
        let (r, f, d) = (get(req), get(func), get(db));
        for s in [r, f, d] {
            assert_eq!(hex(&s.trace_id), format!("{trace:032x}"));
            assert!(s.end_time_unix_nano <= now_ns + 1_000_000_000);
            assert!(
                s.end_time_unix_nano > now_ns - 600_000_000_000,
                "wall-clock times"
            );
            assert_eq!(
                int_attr(attrs_of(s), "process.pid"),
                None,
                "on the resource, not on each span"
            );
            assert!(int_attr(attrs_of(s), "thread.id").is_some());
            assert_eq!(s.flags & 1, 1, "sampled");
        }
        let route = ROUTES[(i % 2) as usize];
        assert_eq!(r.name, format!("GET {route}"));
        assert_eq!(r.kind, SpanKind::Server as i32);
        assert!(r.parent_span_id.is_empty(), "the request is the root");
        assert_eq!(
            r.end_time_unix_nano - r.start_time_unix_nano,
            50_000 + i * 120_000
        );
        let a = attrs_of(r);
        assert_eq!(string_attr(a, "http.route").as_deref(), Some(route));
        assert_eq!(string_attr(a, "url.scheme").as_deref(), Some("http"));
        assert_eq!(
            string_attr(a, "url.path").as_deref(),
            Some(route),
            "the template: the path itself is never recorded"
        );
        assert_eq!(
            string_attr(a, "http.request.method").as_deref(),
            Some("GET")
        );
        assert_eq!(int_attr(a, "http.response.status_code"), Some(200));
        assert_eq!(int_attr(a, "http.request.body.size"), Some(100 + i as i64));
        assert_eq!(int_attr(a, "http.response.body.size"), Some(200 + i as i64));
        assert!(r.status.is_none() && r.events.is_empty());

        assert_eq!(f.name, "load_order");
        assert_eq!(f.kind, SpanKind::Internal as i32);
        assert_eq!(hex(&f.parent_span_id), format!("{req:016x}"));
        assert_eq!(f.end_time_unix_nano - f.start_time_unix_nano, 40_000);

        assert_eq!(d.name, "SELECT orders");
        assert_eq!(d.kind, SpanKind::Client as i32);
        assert_eq!(hex(&d.parent_span_id), format!("{func:016x}"));
        let a = attrs_of(d);
        assert_eq!(string_attr(a, "db.query.text").as_deref(), Some(QUERY));
        assert_eq!(
            string_attr(a, "db.system.name").as_deref(),
            Some("other_sql")
        );
        assert_eq!(
            int_attr(a, "db.response.returned_rows"),
            Some((i % 5) as i64)
        );
        assert_eq!(
            string_attr(a, "db.operation.name").as_deref(),
            Some("SELECT")
        );
        assert_eq!(
            string_attr(a, "db.collection.name").as_deref(),
            Some("orders")
        );
    }
    for k in 0..ERRORS {
        let s = by_id[&format!("{:016x}", 0xe000 + k)];
        assert_eq!(s.name, "POST /api/pay");
        let status = s.status.as_ref().expect("error status");
        assert_eq!(status.code, StatusCode::Error as i32);
        // The writer redacts the number in the message.
        assert_eq!(status.message, "upstream timed out #?");
        assert_eq!(
            string_attr(&s.attributes, "error.type").as_deref(),
            Some("TimeoutError")
        );
        assert_eq!(
            int_attr(&s.attributes, "http.response.status_code"),
            Some(503)
        );
        let event = &s.events[0];
        assert_eq!(event.name, "exception");
        assert_eq!(
            string_attr(&event.attributes, "exception.message"),
            Some("upstream timed out #?".to_string())
        );
        assert_eq!(
            string_attr(&event.attributes, "exception.type").as_deref(),
            Some("TimeoutError")
        );
    }
    let orphans: Vec<&Span> = spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.name == "orphan_job")
        .collect();
    assert_eq!(orphans.len() as u64, ORPHANS);
    let mut orphan_traces: Vec<String> = orphans.iter().map(|s| hex(&s.trace_id)).collect();
    orphan_traces.sort();
    orphan_traces.dedup();
    assert_eq!(orphan_traces.len() as u64, ORPHANS, "a fresh trace id each");
    for s in &orphans {
        assert!(s.trace_id.len() == 16 && s.trace_id.iter().any(|&b| b != 0));
        assert!(s.span_id.len() == 8 && s.span_id.iter().any(|&b| b != 0));
        assert!(s.parent_span_id.is_empty());
    }

    // The final metrics push: cumulative histograms per route.
    let metrics = receiver
        .with(|r| r.metrics.last().cloned())
        .expect("a metrics push at exit");
    let rm = &metrics.resource_metrics[0];
    let res = rm.resource.as_ref().unwrap();
    assert_eq!(
        string_attr(&res.attributes, "service.name").as_deref(),
        Some("test-svc")
    );
    assert!(string_attr(&res.attributes, "service.instance.id").is_some());
    let metrics: HashMap<&str, &Metric> = rm.scope_metrics[0]
        .metrics
        .iter()
        .map(|m| (m.name.as_str(), m))
        .collect();
    let Some(metric::Data::Histogram(h)) = &metrics["profilis.request.duration"].data else {
        panic!("the duration metric is a histogram");
    };
    assert_eq!(metrics["profilis.request.duration"].unit, "s");
    assert_eq!(h.aggregation_temporality, 2, "cumulative");
    assert_eq!(h.data_points.len(), emitted.durations.len());
    for p in &h.data_points {
        let route = string_attr(&p.attributes, "http.route").unwrap();
        let durs = &emitted.durations[&route];
        assert_eq!(p.count, durs.len() as u64, "{route}");
        let sum: u64 = durs.iter().sum();
        assert!((p.sum.unwrap() - sum as f64 / 1e9).abs() < 1e-9, "{route}");
        let bounds: Vec<f64> = BUCKET_BOUNDS_NS.iter().map(|&b| b as f64 / 1e9).collect();
        assert_eq!(p.explicit_bounds, bounds);
        let mut want = vec![0u64; BUCKET_BOUNDS_NS.len() + 1];
        for &d in durs {
            want[BUCKET_BOUNDS_NS.partition_point(|&le| le < d)] += 1;
        }
        assert_eq!(p.bucket_counts, want, "{route}");
        assert!(p.start_time_unix_nano > 0 && p.time_unix_nano >= p.start_time_unix_nano);
    }
    let sum_of = |name: &str, route: &str| -> i64 {
        let Some(metric::Data::Sum(s)) = &metrics[name].data else {
            panic!("{name} is a sum");
        };
        assert!(s.is_monotonic && s.aggregation_temporality == 2);
        s.data_points
            .iter()
            .find(|p| string_attr(&p.attributes, "http.route").as_deref() == Some(route))
            .and_then(|p| match p.value {
                Some(number_data_point::Value::AsInt(v)) => Some(v),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{name} of {route}"))
    };
    assert_eq!(sum_of("profilis.requests", "/api/pay"), ERRORS as i64);
    assert_eq!(sum_of("profilis.request.errors", "/api/pay"), ERRORS as i64);
    assert_eq!(sum_of("profilis.request.errors", ROUTES[0]), 0);
    assert_eq!(sum_of("profilis.requests", ROUTES[1]), (TRACES / 2) as i64);

    // --accounting: the exporter's own line.
    let line: Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("{\"exporter\":\"otlp\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .expect("an OTLP accounting line");
    assert_eq!(line["spans_queued"], total_spans);
    assert_eq!(line["spans_exported"], total_spans);
    assert_eq!(line["spans_dropped"], 0);
    assert_eq!(line["spans_failed"], 0);
    assert_eq!(line["retries"], 0);
    assert!(line["metric_exports"].as_u64().unwrap() >= 1);
    let ring_line = &accounting(&out.stdout)[0];
    assert_eq!(ring_line["exporters"]["otlp"]["exported"], total_spans);
    assert_eq!(ring_line["exporters"]["otlp"]["lost"], 0);
}

#[test]
fn grpc_export_matches_the_emitted_events() {
    run_once_against(Protocol::Grpc);
}

#[test]
fn http_export_matches_the_emitted_events() {
    run_once_against(Protocol::Http);
}

fn write_requests(ring: &Ring, route: &str, n: u64) {
    let id = ring.intern(route);
    for i in 0..n {
        ring.emit_req(id, 200, 10_000 + i);
    }
}

/// `profilis_reader_otlp_spans_total{outcome="..."}` from a scrape.
fn otlp_outcome(metrics: &str, outcome: &str) -> u64 {
    let prefix = format!("profilis_reader_otlp_spans_total{{outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[test]
fn receiver_down_then_back() {
    // A port with nothing listening: connections are refused.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("app.ring");
    let ring = ring(&ring_path, 1 << 14);
    let jsonl = tmp.path().join("jsonl");
    let mut child = reader()
        .arg(&ring_path)
        .args(["--flush-interval", "100ms", "--accounting", "--jsonl-dir"])
        .arg(&jsonl)
        .args(["--otlp-endpoint", &format!("http://{addr}")])
        .args(["--otlp-queue", "300", "--otlp-batch-size", "100"])
        .args(["--otlp-retry-max-elapsed", "400ms", "--otlp-timeout", "3s"])
        .args(["--otlp-metrics-interval", "500ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (line, _lines) = stderr_line(&mut child, "dashboard at", Duration::from_secs(30));
    let ui = dashboard_url(&line).0;

    const BEFORE: u64 = 3000;
    write_requests(&ring, "/before", BEFORE);
    assert!(
        wait_until(Duration::from_secs(30), || data_files(&jsonl)
            .first()
            .is_some_and(|_| read_lines_so_far(&jsonl).len() as u64 == BEFORE)),
        "the drain goes on while the receiver is down: JSONL has every event"
    );
    let mut scrape = String::new();
    assert!(
        wait_until(Duration::from_secs(30), || {
            scrape = http_get(&ui, "/_profilis/metrics", &[]).2;
            otlp_outcome(&scrape, "dropped") > 0 && otlp_outcome(&scrape, "failed") > 0
        }),
        "drops and failures are counted: {scrape}"
    );
    assert_eq!(otlp_outcome(&scrape, "exported"), 0);

    // The receiver comes back on the same port: new spans arrive.
    let receiver = Receiver::start_on(Protocol::Grpc, addr).expect("rebinding the port");
    const AFTER: u64 = 50;
    write_requests(&ring, "/after", AFTER);
    let after = || {
        receiver
            .spans()
            .iter()
            .filter(|(_, s)| s.name == "/after")
            .count() as u64
    };
    assert!(
        wait_until(Duration::from_secs(30), || after() == AFTER),
        "export resumes: {} of {AFTER} new spans arrived",
        after()
    );
    assert!(
        wait_until(Duration::from_secs(30), || receiver
            .with(|r| !r.metrics.is_empty())),
        "metrics pushes resume"
    );

    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = wait_output(child, Duration::from_secs(30));
    assert!(out.status.success());
    assert_eq!(read_lines(&jsonl).len() as u64, BEFORE + AFTER);
    let line: Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("{\"exporter\":\"otlp\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .expect("an OTLP accounting line");
    let n = |k: &str| line[k].as_u64().unwrap();
    assert_eq!(n("spans_queued") + n("spans_dropped"), BEFORE + AFTER);
    assert_eq!(
        n("spans_exported") + n("spans_failed") + n("spans_rejected"),
        n("spans_queued"),
        "every queued span is accounted for at exit: {line}"
    );
    assert!(n("spans_dropped") > 0 && n("spans_failed") > 0 && n("retries") > 0);
    assert_eq!(n("spans_exported") as usize, receiver.span_count());
    assert!(line["last_error"].as_str().is_some());
}

#[test]
fn retryable_errors_are_retried_and_final_errors_counted() {
    for protocol in [Protocol::Grpc, Protocol::Http] {
        let receiver = Receiver::start(protocol);
        receiver.fail_unavailable(2);
        let tmp = tempfile::tempdir().unwrap();
        let ring_path = tmp.path().join("app.ring");
        let ring = ring(&ring_path, 4096);
        write_requests(&ring, "/r", 10);
        let args = |receiver: &Receiver| {
            vec![
                ring_path.to_str().unwrap().to_string(),
                "--once".into(),
                "--accounting".into(),
                "--otlp-endpoint".into(),
                receiver.endpoint(),
                "--otlp-protocol".into(),
                protocol.flag().into(),
                "--otlp-metrics-interval".into(),
                "0".into(),
            ]
        };
        let a = args(&receiver);
        let out = run_reader(
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            Duration::from_secs(60),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = otlp_line(&out.stdout);
        assert_eq!(line["spans_exported"], 10, "{protocol:?}: {line}");
        assert_eq!(line["retries"], 2, "{protocol:?}: {line}");
        assert_eq!(receiver.span_count(), 10);
        let ring_line = &accounting(&out.stdout)[0];
        assert_eq!(
            ring_line["exporters"]["otlp"]["exported"], 10,
            "{ring_line}"
        );
        assert_eq!(ring_line["exporters"]["otlp"]["lost"], 0, "{ring_line}");

        // A final error: not retried, counted, exit code 3 under --once.
        write_requests(&ring, "/r", 10);
        receiver.fail_invalid(1);
        let out = run_reader(
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            Duration::from_secs(60),
        );
        assert_eq!(out.status.code(), Some(3), "{protocol:?}");
        let line = otlp_line(&out.stdout);
        assert_eq!(line["spans_failed"], 10, "{protocol:?}: {line}");
        assert_eq!(line["retries"], 0, "{protocol:?}: {line}");
        let ring_line = &accounting(&out.stdout)[0];
        assert_eq!(
            ring_line["exporters"]["otlp"]["exported"], 0,
            "the receiver rejected them: {ring_line}"
        );
        assert_eq!(ring_line["exporters"]["otlp"]["lost"], 10, "{ring_line}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("10 spans not sent"), "{stderr}");
    }
}

fn otlp_line(stdout: &[u8]) -> Value {
    String::from_utf8_lossy(stdout)
        .lines()
        .find(|l| l.starts_with("{\"exporter\":\"otlp\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .expect("an OTLP accounting line")
}

#[test]
fn bad_otlp_options_fail_before_draining() {
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("app.ring");
    drop(ring(&ring_path, 1024));
    let path = ring_path.to_str().unwrap();
    for (args, message) in [
        (
            vec!["--otlp-endpoint", "https://collector:4317"],
            "https is not supported",
        ),
        (vec!["--otlp-endpoint", "collector:4317"], "http://"),
        (vec!["--otlp-protocol", "http"], "--otlp-endpoint"),
        (
            vec![
                "--otlp-endpoint",
                "http://127.0.0.1:4317",
                "--otlp-headers-file",
                "/nonexistent/headers",
            ],
            "reading --otlp-headers-file",
        ),
    ] {
        let mut all = vec![path, "--once"];
        all.extend(args);
        let out = run_reader(&all, Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{all:?}");
        assert!(stderr.contains(message), "{all:?}: {stderr}");
    }
}

/// Known request durations per reader, including values exactly on bucket
/// bounds and beyond the last one.
fn durations_of(reader: u64) -> Vec<(&'static str, u64)> {
    let mut out = Vec::new();
    for i in 0..200u64 {
        let route = ["/a", "/b", "/c"][((i + reader) % 3) as usize];
        let dur = match i % 7 {
            0 => BUCKET_BOUNDS_NS[(i as usize / 7 + reader as usize) % BUCKET_BOUNDS_NS.len()],
            1 => 20_000_000_000 + i,
            _ => 37_000 * (i + 1) * (reader + 1),
        };
        out.push((route, dur));
    }
    out
}

/// Bucket lines of a histogram family by (route label or "", le).
fn buckets(scrape: &str, family: &str) -> HashMap<(String, String), f64> {
    let prefix = format!("{family}_bucket{{");
    let mut out = HashMap::new();
    for line in scrape.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let (labels, value) = rest.rsplit_once("} ").unwrap();
        let label = |name: &str| {
            labels
                .split(&format!("{name}=\""))
                .nth(1)
                .map(|v| v[..v.find('"').unwrap()].to_string())
                .unwrap_or_default()
        };
        out.insert((label("route"), label("le")), value.parse().unwrap());
    }
    out
}

#[test]
fn prometheus_histograms_of_two_readers_add_up() {
    let tmp = tempfile::tempdir().unwrap();
    let mut children = Vec::new();
    let mut all: Vec<(&str, u64)> = Vec::new();
    let mut rings = Vec::new();
    for r in 0..2u64 {
        let ring_path = tmp.path().join(format!("host{r}.ring"));
        let ring = ring(&ring_path, 4096);
        let durations = durations_of(r);
        for &(route, dur) in &durations {
            ring.emit_req(route, 200, dur);
        }
        all.extend(durations);
        rings.push(ring);
        let mut child = reader()
            .arg(&ring_path)
            .args(["--flush-interval", "100ms"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (line, _) = stderr_line(&mut child, "dashboard at", Duration::from_secs(30));
        children.push((child, dashboard_url(&line).0));
    }
    let mut scrapes = Vec::new();
    for (_, addr) in &children {
        let mut scrape = String::new();
        assert!(
            wait_until(Duration::from_secs(30), || {
                scrape = http_get(addr, "/_profilis/metrics", &[]).2;
                scrape.lines().any(|l| l == "profilis_requests_total 200")
            }),
            "reader at {addr} drained its 200 requests"
        );
        scrapes.push(scrape);
    }
    for (mut child, _) in children {
        // SAFETY: kill with our child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
    }

    // The union of the events, bucketed by Prometheus' rule (le is an
    // inclusive upper bound), cumulative.
    let le_text = |ns: u64| (ns as f64 / 1e9).to_string();
    let mut expected: HashMap<(String, String), f64> = HashMap::new();
    for &(route, dur) in &all {
        for key in [String::new(), route.to_string()] {
            for &bound in &BUCKET_BOUNDS_NS {
                if dur <= bound {
                    *expected.entry((key.clone(), le_text(bound))).or_default() += 1.0;
                } else {
                    expected.entry((key.clone(), le_text(bound))).or_default();
                }
            }
            *expected.entry((key, "+Inf".to_string())).or_default() += 1.0;
        }
    }
    let mut summed: HashMap<(String, String), f64> = HashMap::new();
    for scrape in &scrapes {
        for family in [
            "profilis_request_duration_seconds",
            "profilis_route_request_duration_seconds",
        ] {
            for (key, v) in buckets(scrape, family) {
                *summed.entry(key).or_default() += v;
            }
        }
    }
    assert_eq!(summed.len(), expected.len());
    for (key, want) in &expected {
        assert_eq!(summed.get(key), Some(want), "bucket {key:?}");
    }

    // reader/tests/prometheus_server.rs checks the same through a real
    // Prometheus server.
}
