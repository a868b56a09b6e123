//! The monitoring stack as a user runs it: a real Prometheus server
//! (Debian's `prometheus` package, 2.42) scrapes two live `profilis-reader`
//! processes with the shipped `docs/examples/prometheus.yml` (its targets
//! and intervals replaced, nothing else) and evaluates the shipped
//! `profilis-rules.yml`. Each reader drains a ring of its own fed with a
//! known workload; what Prometheus answers over its HTTP API is checked
//! against the figures computed from the events both readers drained:
//! bucket counts and error counts exactly, `histogram_quantile` over
//! `rate()` in the bucket that holds the exact P99, the error ratio over
//! `rate()`, the losses and the lost-events rule on a reader that has no
//! exporter. Then every PromQL expression of
//! `docs/examples/grafana-dashboard.json` must parse, and those over
//! metrics the readers serve must return data; and `promtool check
//! metrics` passes on both live expositions.
//!
//! Needs the `prometheus` binary (`PROFILIS_PROMETHEUS`, else `PATH`) and
//! `promtool` beside it: scripts/ci/20-test.sh installs them. Without it the test says so and
//! passes, except under `CI=true`, where it fails.

mod common;

use common::*;
use profilis::record::FLAG_ERROR;
use profilis::{Emit, Fields, Kind, Ring, StrId};
use profilis_reader::window::durations::BUCKET_BOUNDS_NS;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "prometheus-test-token-0123456789abcdef";
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/examples");

/// Children killed when the test ends, however it ends.
struct Kill(Vec<Child>);

impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn prometheus_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PROFILIS_PROMETHEUS") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("prometheus"))
            .find(|p| p.is_file())
    })
}

/// One request of the workload.
#[derive(Clone, Copy)]
struct Req {
    route: &'static str,
    dur_ns: u64,
    error: Option<&'static str>,
}

/// The requests of reader `r`: route /a on both readers, its slow tail only
/// on reader 0, so the P99 of the union is in a bucket that neither
/// reader's own P99 nor their average is in.
fn requests_of(r: usize) -> Vec<Req> {
    let mut out = Vec::new();
    let req = |route, dur_ns, error| Req {
        route,
        dur_ns,
        error,
    };
    if r == 0 {
        for i in 0..480u64 {
            let error = (i < 25).then_some("TimeoutError");
            out.push(req("/a", 1_200_000 + i * 2_000, error));
        }
        for i in 0..20u64 {
            out.push(req("/a", 300_000_000 + i * 1_000_000, None));
        }
        for i in 0..300u64 {
            let error = (i % 10 == 0).then_some("ValueError");
            out.push(req("/b", 40_000_000 + i * 10_000, error));
        }
    } else {
        for i in 0..500u64 {
            let error = (i % 5 == 0).then_some("TimeoutError");
            out.push(req("/a", 1_500_000 + i * 1_000, error));
        }
        for i in 0..200u64 {
            out.push(req("/c", 7_000_000 + i * 5_000, None));
        }
    }
    out
}

/// One fast request per route of reader `r`, one call, one query: the
/// series of each name appear before the workload (Prometheus' `rate()`
/// does not count what a series holds at its first sample).
fn warm_up(ring: &Ring, r: usize) -> Vec<Req> {
    let mut routes: Vec<&'static str> = requests_of(r).iter().map(|q| q.route).collect();
    routes.dedup();
    for route in &routes {
        assert_eq!(ring.emit_req(*route, 200, 1_000_000), Emit::Written);
    }
    assert_eq!(ring.emit_fn("load_user", 3_000_000, false), Emit::Written);
    assert_eq!(
        ring.emit_db("SELECT * FROM users WHERE id = ?", 1_500_000, 1),
        Emit::Written
    );
    routes
        .into_iter()
        .map(|route| Req {
            route,
            dur_ns: 1_000_000,
            error: None,
        })
        .collect()
}

/// Writes reader `r`'s workload into `ring`; returns the requests written
/// and the events lost (refused, and claims abandoned on purpose).
fn feed(ring: &Ring, r: usize) -> (Vec<Req>, u64) {
    let mut written = Vec::new();
    let mut lost = 0;
    for q in requests_of(r) {
        let fields = Fields {
            status: if q.error.is_some() { 500 } else { 200 },
            flags: if q.error.is_some() { FLAG_ERROR } else { 0 },
            dur_ns: q.dur_ns,
            exception_type: q.error.map_or(StrId::NONE, |e| ring.intern(e)),
            value: 512,
            value2: 2048,
            ..Fields::default()
        };
        match ring.record(Kind::Req, ring.intern(q.route), &fields) {
            Emit::Written => written.push(q),
            _ => lost += 1,
        }
    }
    for i in 0..50u64 {
        if r == 0 {
            lost +=
                u64::from(ring.emit_fn("load_user", 3_000_000 + i, i % 10 == 0) != Emit::Written);
        } else {
            lost += u64::from(
                ring.emit_db("SELECT * FROM users WHERE id = ?", 1_500_000 + i, 1) != Emit::Written,
            );
        }
    }
    if r == 1 {
        // A writer that gives up on events it claimed: abandoned.
        for _ in 0..7 {
            let Ok(claim) = ring.claim() else {
                panic!("no claim on an empty ring")
            };
            drop(claim);
            lost += 1;
        }
    }
    (written, lost)
}

/// GET over HTTP/1.0 (no chunking); status and body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connecting to Prometheus");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (status, _, body) = parse_response(&raw);
    (status, body)
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The answer of Prometheus to an instant query: `Err` with its error when
/// it does not take the query.
fn query(addr: &str, q: &str) -> Result<Vec<Value>, String> {
    let (status, body) = get(addr, &format!("/api/v1/query?query={}", encode(q)));
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("{status} {e}: {body}"))?;
    if v["status"] != "success" {
        return Err(format!("{status}: {body}"));
    }
    Ok(match &v["data"]["result"] {
        Value::Array(a) => a.clone(),
        scalar => vec![serde_json::json!({ "metric": {}, "value": scalar })],
    })
}

fn value_of(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

/// A query whose result has one sample; its value.
fn scalar(addr: &str, q: &str) -> f64 {
    let r = query(addr, q).unwrap_or_else(|e| panic!("{q}: {e}"));
    assert_eq!(r.len(), 1, "{q}: {r:?}");
    value_of(&r[0])
}

/// The shipped scrape configuration with the test's targets and 1 s
/// intervals; the rules and the token file beside it as shipped.
fn write_config(dir: &Path, targets: &[String]) -> PathBuf {
    let shipped = std::fs::read_to_string(format!("{EXAMPLES}/prometheus.yml")).unwrap();
    let mut text = shipped.clone();
    let shipped_targets = "          - app-1.internal:9470\n          - app-2.internal:9470\n          - app-3.internal:9470\n";
    let ours: String = targets
        .iter()
        .map(|t| format!("          - {t}\n"))
        .collect();
    for (from, to) in [
        ("  scrape_interval: 15s\n", "  scrape_interval: 1s\n"),
        (
            "  evaluation_interval: 15s\n",
            "  evaluation_interval: 1s\n",
        ),
        (shipped_targets, ours.as_str()),
    ] {
        assert!(
            text.contains(from),
            "docs/examples/prometheus.yml no longer has {from:?}: update this test"
        );
        text = text.replace(from, to);
    }
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, text).unwrap();
    std::fs::copy(
        format!("{EXAMPLES}/profilis-rules.yml"),
        dir.join("profilis-rules.yml"),
    )
    .unwrap();
    std::fs::write(dir.join("profilis-ui-token"), format!("{TOKEN}\n")).unwrap();
    path
}

/// The bucket `(lo, hi]` of the request histograms that holds `ns`.
fn bucket_of(ns: u64) -> (f64, f64) {
    let at = BUCKET_BOUNDS_NS.partition_point(|&le| le < ns);
    let lo = if at == 0 { 0 } else { BUCKET_BOUNDS_NS[at - 1] };
    let hi = BUCKET_BOUNDS_NS.get(at).copied().unwrap_or(u64::MAX);
    (lo as f64 / 1e9, hi as f64 / 1e9)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn prometheus_scrapes_two_readers_and_answers_exactly() {
    let Some(prometheus) = prometheus_binary() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but no prometheus binary: scripts/ci/20-test.sh installs it"
        );
        println!("SKIPPED: no prometheus binary (apt-get install prometheus, or set PROFILIS_PROMETHEUS)");
        return;
    };
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let token_file = tmp.path().join("ui.token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let mut children = Kill(Vec::new());
    let mut rings = Vec::new();
    let mut readers = Vec::new();
    for r in 0..2 {
        let path = tmp.path().join(format!("host{r}.ring"));
        rings.push(ring(&path, 4096));
        let mut child = reader()
            .arg(&path)
            .args(["--flush-interval", "100ms", "--ui-token-file"])
            .arg(&token_file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (line, _) = stderr_line(&mut child, "dashboard at", Duration::from_secs(30));
        readers.push(dashboard_url(&line).0);
        children.0.push(child);
    }

    let config = write_config(tmp.path(), &readers);
    let prom = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(tmp.path().join("prometheus.log")).unwrap();
    children.0.push(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prom}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting prometheus"),
    );
    let prom_log =
        || std::fs::read_to_string(tmp.path().join("prometheus.log")).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(30), || {
            std::net::TcpStream::connect(&prom).is_ok() && get(&prom, "/-/ready").0 == 200
        }),
        "prometheus not ready:\n{}",
        prom_log()
    );

    // Both readers scraped a few times before any event: counters from 0.
    assert!(
        wait_until(Duration::from_secs(30), || {
            query(
                &prom,
                "count(count_over_time(profilis_requests_total{job=\"profilis-reader\"}[1m]) >= 3)",
            )
            .is_ok_and(|r| r.len() == 1 && value_of(&r[0]) == 2.0)
        }),
        "both readers scraped (bearer token from the shipped config):\n{:?}\n{}",
        query(&prom, "up"),
        prom_log()
    );
    let first_scrapes = Instant::now() - Duration::from_secs(3);

    // Every route, function and query series exists (scraped twice) before
    // the workload.
    let mut drained: Vec<Req> = Vec::new();
    for (r, ring) in rings.iter().enumerate() {
        drained.extend(warm_up(ring, r));
    }
    let warm = drained.len();
    assert!(
        wait_until(Duration::from_secs(30), || {
            query(
                &prom,
                "count(count_over_time(profilis_route_requests_total[1m]) >= 2)",
            )
            .is_ok_and(|r| r.len() == 1 && value_of(&r[0]) == warm as f64)
        }),
        "the route series of both readers scraped twice: {:?}",
        query(&prom, "profilis_route_requests_total")
    );

    let mut lost = [0u64; 2];
    for (r, ring) in rings.iter().enumerate() {
        let (written, l) = feed(ring, r);
        drained.extend(written);
        lost[r] = l;
    }
    let total = drained.len() as f64;
    let errors = drained.iter().filter(|q| q.error.is_some()).count() as f64;
    assert!(
        wait_until(Duration::from_secs(30), || {
            query(&prom, "sum(profilis_requests_total)")
                .is_ok_and(|r| r.len() == 1 && value_of(&r[0]) == total)
                && query(&prom, "sum(profilis_ring_abandoned_total)")
                    .is_ok_and(|r| r.len() == 1 && value_of(&r[0]) == 7.0)
        }),
        "Prometheus saw both readers drain everything: {:?}",
        query(&prom, "profilis_requests_total")
    );

    // Exact: the bucket counters of both readers add up to the histogram of
    // the union of the events.
    let mut want: BTreeMap<(String, String), f64> = BTreeMap::new();
    for q in &drained {
        for &bound in &BUCKET_BOUNDS_NS {
            *want
                .entry((q.route.to_string(), (bound as f64 / 1e9).to_string()))
                .or_default() += f64::from(u8::from(q.dur_ns <= bound));
        }
        *want
            .entry((q.route.to_string(), "+Inf".into()))
            .or_default() += 1.0;
    }
    let got: BTreeMap<(String, String), f64> = query(
        &prom,
        "sum by (le, route) (profilis_route_request_duration_seconds_bucket)",
    )
    .unwrap()
    .iter()
    .map(|s| {
        let m = &s["metric"];
        let le: f64 = m["le"].as_str().unwrap().parse().unwrap();
        let le = if le.is_infinite() {
            "+Inf".into()
        } else {
            le.to_string()
        };
        ((m["route"].as_str().unwrap().to_string(), le), value_of(s))
    })
    .collect();
    assert_eq!(got, want, "bucket counters summed across readers");
    assert_eq!(
        scalar(
            &prom,
            "sum(profilis_errors_total) / sum(profilis_requests_total)"
        ),
        errors / total
    );

    // rate() needs a range of samples: at least 15 s since the first, and
    // a few scrapes since the series that appeared with the workload (the
    // losses per producer).
    let fed = Instant::now();
    std::thread::sleep(
        (first_scrapes + Duration::from_secs(15))
            .max(fed + Duration::from_secs(3))
            .saturating_duration_since(Instant::now()),
    );

    // The Grafana board: every expression parses; those over metrics the
    // readers serve samples of (and the rules' records) return data.
    let promtool = prometheus.with_file_name("promtool");
    let served: BTreeSet<String> = readers
        .iter()
        .flat_map(|addr| {
            let (status, _, body) = http_get(
                addr,
                "/_profilis/metrics",
                &[&format!("Authorization: Bearer {TOKEN}")],
            );
            assert_eq!(status, 200);
            // The live exposition parses and lints clean.
            let mut check = Command::new(&promtool)
                .args(["check", "metrics"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("promtool beside prometheus");
            check
                .stdin
                .take()
                .unwrap()
                .write_all(body.as_bytes())
                .unwrap();
            let out = check.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool check metrics: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            body.lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l[..l.find(['{', ' ']).unwrap()].to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let board: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{EXAMPLES}/grafana-dashboard.json")).unwrap(),
    )
    .expect("the Grafana board is JSON");
    let mut exprs = Vec::new();
    collect_exprs(&board, &mut exprs);
    assert!(exprs.len() >= 20, "{} expressions", exprs.len());
    let mut parse_only = Vec::new();
    for expr in &exprs {
        let q = expr
            .replace("$__rate_interval", "1m")
            .replace("$__interval", "15s")
            .replace("$instance", ".*");
        let result = query(&prom, &q).unwrap_or_else(|e| panic!("the board's {expr}: {e}"));
        let missing: Vec<String> = metric_names(&q)
            .into_iter()
            .filter(|n| !n.contains(':') && !served.contains(n))
            .collect();
        if missing.is_empty() {
            assert!(!result.is_empty(), "the board's {q} returns no data");
        } else {
            parse_only.push(format!("{q} (not served: {})", missing.join(", ")));
        }
    }
    println!(
        "grafana board: {} expressions parse, {} return data; parsed only: {parse_only:#?}",
        exprs.len(),
        exprs.len() - parse_only.len()
    );

    // P99 per route across both readers, from the buckets: in the bucket of
    // the exact P99 of the union of the events rate() sees (those after the
    // series appeared).
    let p99 = query(
        &prom,
        "histogram_quantile(0.99, sum by (le, route) (rate(profilis_route_request_duration_seconds_bucket[1m])))",
    )
    .unwrap();
    let mut by_route: HashMap<&str, Vec<u64>> = HashMap::new();
    for q in &drained[warm..] {
        by_route.entry(q.route).or_default().push(q.dur_ns);
    }
    assert_eq!(p99.len(), by_route.len(), "{p99:?}");
    for s in &p99 {
        let route = s["metric"]["route"].as_str().unwrap();
        let mut d = by_route[route].clone();
        d.sort_unstable();
        let exact = d[((0.99 * d.len() as f64).ceil() as usize).max(1) - 1];
        let (lo, hi) = bucket_of(exact);
        let v = value_of(s);
        assert!(
            lo <= v && v <= hi,
            "P99 of {route}: Prometheus {v}, exact {exact} ns in ({lo}, {hi}]"
        );
    }
    let a = p99.iter().find(|s| s["metric"]["route"] == "/a").unwrap();
    assert!(value_of(a) > 0.25, "/a's slow tail is only on reader 0");

    // The error ratio over rate(): the two readers' counters are scraped at
    // different instants, so rate() extrapolates each by its own factor
    // (within 1.1 s of 15 s or more); exact otherwise.
    let ratio = scalar(
        &prom,
        "sum(rate(profilis_errors_total[1m])) / sum(rate(profilis_requests_total[1m]))",
    );
    assert!(
        (ratio - errors / total).abs() < 0.005,
        "error ratio {ratio}, exact {}",
        errors / total
    );

    // Losses: exact counters, and the lost-events rule per reader, which
    // has a value (0) for reader 0 although it has no exporter and so no
    // profilis_reader_export_lost_total at all.
    assert_eq!(
        scalar(
            &prom,
            "sum(profilis_ring_dropped_total) + sum(profilis_ring_abandoned_total) + sum(profilis_ring_torn_total)"
        ),
        (lost[0] + lost[1]) as f64
    );
    assert!(query(&prom, "profilis_reader_export_lost_total")
        .unwrap()
        .is_empty());
    let per_reader: HashMap<String, f64> = query(&prom, "instance:profilis_lost_events:rate5m")
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["metric"]["instance"].as_str().unwrap().to_string(),
                value_of(s),
            )
        })
        .collect();
    assert_eq!(per_reader.len(), 2, "{per_reader:?}");
    assert_eq!(per_reader[&readers[0]], 0.0, "{per_reader:?}");
    assert!(per_reader[&readers[1]] > 0.0, "{per_reader:?}");
    let pending = query(&prom, "ALERTS{alertname=\"ProfilisLosingEvents\"}").unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["metric"]["instance"], readers[1].as_str());
    assert_eq!(pending[0]["metric"]["alertstate"], "pending");
    println!(
        "prometheus: {} requests, {} errors, {} lost over two readers checked in {:.1} s",
        total,
        errors,
        lost[0] + lost[1],
        started.elapsed().as_secs_f64()
    );
}

/// Every `expr` string of the board.
fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_exprs(x, out)),
        _ => {}
    }
}

/// The metric names an expression reads: `profilis_*`, `process_*`, and
/// recorded names (`a:b:c`).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in expr.chars().chain([' ']) {
        if c == '"' {
            quoted = !quoted;
        }
        if !quoted && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            word.push(c);
            continue;
        }
        if word.starts_with("profilis_") || word.starts_with("process_") || word.contains(':') {
            names.push(word.clone());
        }
        word.clear();
    }
    names
}
