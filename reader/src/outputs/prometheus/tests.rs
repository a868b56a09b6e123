//! The exposition of a sample snapshot: well formed, units, escaping,
//! histograms.

use super::*;
use crate::views::*;
use crate::window::durations::BUCKET_BOUNDS_NS;

fn latency(name: &str, count: u64) -> Latency {
    Latency {
        name: name.into(),
        count,
        errors: 1,
        error_rate: 1.0 / count as f64,
        rps: 2.5,
        mean_ns: 1_500_000,
        p50_ns: 1_000_000,
        p95_ns: 4_000_000,
        p99_ns: 9_000_000,
        p999_ns: 12_000_000,
        max_ns: 20_000_000,
        ..Latency::default()
    }
}

fn sample_snapshot() -> Snapshot {
    let hostile = "/api/\"q\"\\x\nnew é";
    let hist = |name: &str| DurationHistogram {
        name: name.into(),
        cumulative: (0..16).map(|i| (i as u64).min(5)).collect(),
        count: 7,
        errors: 1,
        sum_secs: 0.0123,
        ..DurationHistogram::default()
    };
    Snapshot {
        generated_ns: 1_800_000_000_000_000_000,
        stats: StatsSnapshot {
            requests: latency("all requests", 40),
            routes: vec![latency(hostile, 30), latency("/b", 10)],
            functions: vec![latency("load_user", 3)],
            queries: vec![latency("SELECT ?", 3)],
            custom: vec![CustomMetric {
                name: "depth".into(),
                count: 2,
                avg: 1.5,
                min: 1.0,
                max: 2.0,
                last: 2.0,
            }],
            totals: Totals {
                requests: 41,
                request_errors: 2,
                ..Totals::default()
            },
            request_durations: RequestDurations {
                bounds_ns: BUCKET_BOUNDS_NS.to_vec(),
                all: hist("all requests"),
                routes: vec![hist(hostile), hist("/b")],
                functions: vec![hist("load_user"), hist("(other)")],
                queries: vec![hist("SELECT * FROM t WHERE id = ?")],
            },
            ..StatsSnapshot::default()
        },
        rings: vec![RingStatus {
            path: "/dev/shm/a \"b\".ring".into(),
            ring_id: "00112233aabbccdd".into(),
            capacity: 1024,
            attached: true,
            lag: 3,
            writers: vec![WriterStatus {
                pid: 42,
                alive: true,
                service: Some("sh\"op".into()),
                last_seen_ns: 1_800_000_000_500_000_000,
                ..WriterStatus::default()
            }],
            ..RingStatus::default()
        }],
        producers: ProducersSnapshot {
            losses: vec![
                crate::views::ProducerLoss {
                    pid: Some(42),
                    service: Some("sh\"op".into()),
                    ring_full: 5,
                    abandoned: 1,
                    total: 6,
                    ..Default::default()
                },
                crate::views::ProducerLoss {
                    pid: Some(42),
                    service: Some("sh\"op".into()),
                    ring_full: 2,
                    total: 2,
                    ..Default::default()
                },
                crate::views::ProducerLoss {
                    pid: None,
                    torn: 3,
                    total: 3,
                    ..Default::default()
                },
            ],
            ..ProducersSnapshot::default()
        },
        reader: ReaderMetrics {
            exporters: vec![ExporterStatus {
                name: "jsonl",
                errors: 2,
                ..ExporterStatus::default()
            }],
            ..ReaderMetrics::default()
        },
        limits: Limits {
            rings: RingLimit {
                limit: Some(64),
                used: 1,
                ..RingLimit::default()
            },
            routes: Limit {
                limit: Some(1000),
                used: 2,
                hits: 5,
                hits_last_minute: 0,
            },
            strings: vec![StringLimit {
                ring: "/dev/shm/a \"b\".ring".into(),
                ring_id: "00112233aabbccdd".into(),
                entries: 4096,
                entries_used: 12,
                overflow: 3,
                ..StringLimit::default()
            }],
            ..Limits::default()
        },
        processes: super::process::tests::sample(),
    }
}

/// Every line is a comment or `name{labels} value`, every sample
/// belongs to the family announced last, and each family is announced
/// once with HELP then TYPE.
#[test]
fn exposition_is_well_formed() {
    let text = render(&sample_snapshot());
    let mut current: Option<(String, String)> = None;
    let mut seen = std::collections::HashSet::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_string();
            assert!(seen.insert(name.clone()), "{name} announced twice");
            let ty = lines.next().unwrap();
            let kind = ty
                .strip_prefix(&format!("# TYPE {name} "))
                .unwrap_or_else(|| panic!("TYPE after HELP of {name}: {ty}"));
            assert!(["counter", "gauge", "histogram"].contains(&kind));
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{name}");
            }
            current = Some((name, kind.to_string()));
            continue;
        }
        let (family, kind) = current.clone().expect("sample before any family");
        let name_end = line.find(['{', ' ']).unwrap();
        let name = &line[..name_end];
        if kind == "histogram" {
            assert!(
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| name == format!("{family}{s}")),
                "{line}"
            );
        } else {
            assert_eq!(name, family, "{line}");
        }
        let value = line.rsplit(' ').next().unwrap();
        assert!(
            value.parse::<f64>().is_ok() || ["NaN", "+Inf", "-Inf"].contains(&value),
            "{line}"
        );
    }
    for required in [
        "profilis_requests_total",
        "profilis_errors_total",
        "profilis_error_ratio",
        "profilis_error_rate",
        "profilis_latency_p50_seconds",
        "profilis_latency_p95_seconds",
        "profilis_latency_p99_seconds",
        "profilis_request_duration_seconds",
        "profilis_route_request_duration_seconds",
        "profilis_reader_events_per_second",
        "profilis_reader_batches_total",
        "profilis_ring_lag",
        "profilis_ring_dropped_total",
        "profilis_ring_abandoned_total",
        "profilis_ring_torn_total",
        "profilis_reader_exporter_errors_total",
        "profilis_events_dropped_total",
        "profilis_writer_alive",
        "profilis_writer_last_seen_timestamp_seconds",
        "profilis_writer_last_seen_seconds",
        "profilis_function_calls_total",
        "profilis_function_errors_total",
        "profilis_function_duration_seconds",
        "profilis_query_calls_total",
        "profilis_query_errors_total",
        "profilis_query_duration_seconds",
        "profilis_reader_limit_max",
        "profilis_reader_limit_current",
        "profilis_reader_limit_max_bytes",
        "profilis_reader_limit_current_bytes",
    ] {
        assert!(seen.contains(required), "{required} missing");
    }
}

#[test]
fn values_units_and_escaping() {
    let text = render(&sample_snapshot());
    // scripts/ci/80-browser.sh checks this text with promtool.
    if let Some(path) = std::env::var_os("PROFILIS_PROM_SAMPLE_OUT") {
        std::fs::write(path, &text).unwrap();
    }
    let has = |line: &str| text.lines().any(|l| l == line);
    assert!(has("profilis_requests_total 41"));
    assert!(has("profilis_errors_total 2"));
    assert!(has("profilis_error_rate 0.025"));
    assert!(has("profilis_latency_p99_seconds 0.009"), "ns to seconds");
    assert!(has(
        "profilis_route_latency_p95_seconds{route=\"/api/\\\"q\\\"\\\\x\\nnew é\"} 0.004"
    ));
    assert!(has(
        "profilis_ring_lag{ring=\"/dev/shm/a \\\"b\\\".ring\",ring_id=\"00112233aabbccdd\"} 3"
    ));
    assert!(has(
        "profilis_reader_exporter_errors_total{exporter=\"jsonl\"} 2"
    ));
    assert!(has("profilis_ring_writers{ring=\"/dev/shm/a \\\"b\\\".ring\",ring_id=\"00112233aabbccdd\",state=\"alive\"} 1"));
    assert!(has("profilis_reader_limit{limit=\"routes\"} 1000"));
    assert!(
        !text.contains("profilis_reader_limit{limit=\"jsonl_bytes\"}"),
        "an unbounded limit has no bound sample"
    );
    assert!(has("profilis_reader_limit_used{limit=\"rings\"} 1"));
    assert!(has("profilis_reader_limit_hits_total{limit=\"routes\"} 5"));
    assert!(has(
        "profilis_ring_string_overflow_total{ring=\"/dev/shm/a \\\"b\\\".ring\",ring_id=\"00112233aabbccdd\"} 3"
    ));
    assert!(has(
        "profilis_ring_string_entries_used{ring=\"/dev/shm/a \\\"b\\\".ring\",ring_id=\"00112233aabbccdd\"} 12"
    ));
    // Per producer, summed over its rings.
    assert!(has(
        "profilis_events_dropped_total{pid=\"42\",service=\"sh\\\"op\",cause=\"ring_full\"} 7"
    ));
    assert!(has(
        "profilis_events_dropped_total{pid=\"42\",service=\"sh\\\"op\",cause=\"abandoned\"} 1"
    ));
    assert!(has(
        "profilis_events_dropped_total{pid=\"unknown\",service=\"\",cause=\"torn\"} 3"
    ));
    assert!(has("profilis_writer_alive{ring=\"/dev/shm/a \\\"b\\\".ring\",ring_id=\"00112233aabbccdd\",pid=\"42\",service=\"sh\\\"op\"} 1"));
    assert!(has("profilis_writer_last_seen_seconds{ring=\"/dev/shm/a \\\"b\\\".ring\",ring_id=\"00112233aabbccdd\",pid=\"42\",service=\"sh\\\"op\"} 1800000000.5"));
}

#[test]
fn histogram_buckets_are_cumulative_and_end_in_inf() {
    let text = render(&sample_snapshot());
    let buckets: Vec<(&str, f64)> = text
        .lines()
        .filter(|l| l.starts_with("profilis_request_duration_seconds_bucket"))
        .map(|l| {
            let le = l.split("le=\"").nth(1).unwrap().split('"').next().unwrap();
            (le, l.rsplit(' ').next().unwrap().parse().unwrap())
        })
        .collect();
    assert_eq!(buckets.len(), BUCKET_BOUNDS_NS.len() + 1);
    assert_eq!(buckets[0].0, "0.0001");
    assert_eq!(buckets[4].0, "0.0025");
    assert_eq!(buckets.last().unwrap(), &("+Inf", 7.0));
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1));
    assert!(text
        .lines()
        .any(|l| l == "profilis_request_duration_seconds_count 7"));
    assert!(text
        .lines()
        .any(|l| l == "profilis_request_duration_seconds_sum 0.0123"));
    assert!(
        text.lines()
            .any(|l| l
                == "profilis_route_request_duration_seconds_bucket{route=\"/b\",le=\"+Inf\"} 7")
    );
}

#[test]
fn functions_and_queries_are_counters_and_histograms() {
    let text = render(&sample_snapshot());
    let has = |line: &str| text.lines().any(|l| l == line);
    assert!(has(
        "profilis_function_calls_total{function=\"load_user\"} 7"
    ));
    assert!(has(
        "profilis_function_errors_total{function=\"load_user\"} 1"
    ));
    assert!(has("profilis_function_calls_total{function=\"(other)\"} 7"));
    assert!(has(
        "profilis_function_duration_seconds_bucket{function=\"load_user\",le=\"0.0025\"} 4"
    ));
    assert!(has(
        "profilis_function_duration_seconds_bucket{function=\"load_user\",le=\"+Inf\"} 7"
    ));
    assert!(has(
        "profilis_function_duration_seconds_sum{function=\"load_user\"} 0.0123"
    ));
    assert!(has(
        "profilis_query_calls_total{query=\"SELECT * FROM t WHERE id = ?\"} 7"
    ));
    assert!(has(
        "profilis_query_duration_seconds_count{query=\"SELECT * FROM t WHERE id = ?\"} 7"
    ));
    // The window gauges stay, under their own names.
    assert!(has(
        "profilis_function_window_calls{function=\"load_user\"} 3"
    ));
    assert!(has(
        "profilis_query_latency_p99_seconds{query=\"SELECT ?\"} 0.009"
    ));
}

#[test]
fn renamed_families_keep_their_old_name_for_one_release() {
    let text = render(&sample_snapshot());
    let has = |line: &str| text.lines().any(|l| l == line);
    let writer = "{ring=\"/dev/shm/a \\\"b\\\".ring\",ring_id=\"00112233aabbccdd\",pid=\"42\",service=\"sh\\\"op\"}";
    for (new, old, sample) in [
        (
            "profilis_error_ratio",
            "profilis_error_rate",
            " 0.025".to_string(),
        ),
        (
            "profilis_writer_last_seen_timestamp_seconds",
            "profilis_writer_last_seen_seconds",
            format!("{writer} 1800000000.5"),
        ),
    ] {
        assert!(has(&format!("{new}{sample}")), "{new}");
        assert!(has(&format!("{old}{sample}")), "{old} still served");
        let help = text
            .lines()
            .find(|l| l.starts_with(&format!("# HELP {old} ")))
            .unwrap();
        assert!(
            help.contains("DEPRECATED") && help.contains(new),
            "the old HELP names the new family: {help}"
        );
        assert!(
            !text
                .lines()
                .find(|l| l.starts_with(&format!("# HELP {new} ")))
                .unwrap()
                .contains("DEPRECATED"),
            "{new}"
        );
    }
}

#[test]
fn limits_have_a_family_per_unit() {
    let mut snapshot = sample_snapshot();
    snapshot.limits.jsonl_bytes = Limit {
        limit: Some(1 << 30),
        used: 5000,
        hits: 2,
        hits_last_minute: 0,
    };
    snapshot.limits.jsonl_files = Limit {
        limit: Some(20),
        used: 3,
        hits: 0,
        hits_last_minute: 0,
    };
    let text = render(&snapshot);
    let has = |line: &str| text.lines().any(|l| l == line);
    let samples_of = |family: &str| -> Vec<&str> {
        let prefix = format!("{family}{{");
        text.lines().filter(|l| l.starts_with(&prefix)).collect()
    };
    assert!(has("profilis_reader_limit_max{limit=\"routes\"} 1000"));
    assert!(has("profilis_reader_limit_max{limit=\"jsonl_files\"} 20"));
    assert!(has("profilis_reader_limit_current{limit=\"rings\"} 1"));
    assert!(has(
        "profilis_reader_limit_max_bytes{limit=\"jsonl\"} 1073741824"
    ));
    assert!(has(
        "profilis_reader_limit_current_bytes{limit=\"jsonl\"} 5000"
    ));
    for family in ["profilis_reader_limit_max", "profilis_reader_limit_current"] {
        assert!(
            samples_of(family)
                .iter()
                .all(|l| !l.contains("jsonl_bytes")),
            "{family} holds counts only"
        );
    }
    assert_eq!(
        samples_of("profilis_reader_limit_max").len(),
        3,
        "errors is unbounded here: no sample"
    );
    // The mixed families, deprecated, as before.
    assert!(has(
        "profilis_reader_limit{limit=\"jsonl_bytes\"} 1073741824"
    ));
    assert!(has(
        "profilis_reader_limit_used{limit=\"jsonl_bytes\"} 5000"
    ));
    assert!(has(
        "profilis_reader_limit_hits_total{limit=\"jsonl_bytes\"} 2"
    ));
}
