//! The statistics as OTLP metrics, from a published snapshot.
//!
//! | metric | type | attributes |
//! |---|---|---|
//! | `profilis.request.duration` (unit `s`) | histogram, explicit buckets 100 µs … 10 s | `http.route` |
//! | `profilis.requests` | sum, monotonic | `http.route` |
//! | `profilis.request.errors` | sum, monotonic | `http.route` |
//! | `profilis.events` | sum, monotonic | `profilis.event.kind` (`REQ`, `FN`, `DB`, `CUSTOM`) |
//!
//! Temporality is cumulative: every point carries the totals since the
//! reader started (`start_time_unix_nano`), the same counts as the
//! Prometheus `/metrics` histograms. A lost or rejected push loses nothing
//! (the next one carries the totals), a collector's Prometheus exporter
//! takes the points as they are, and a reader restart shows as a new start
//! time (a counter reset). The resource has `service.instance.id`
//! (`host:pid`) so that the cumulative series of several readers never
//! collide, and `service.name`: the writers' service when every attached
//! ring names the same one, else `profilis`.

use super::spans::{kv_str, resource, scope, DEFAULT_SERVICE, SCHEMA_URL};
use crate::views::{DurationHistogram, Snapshot};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};

const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;

/// The metrics request of a snapshot; `None` before the first snapshot.
pub fn request(snapshot: &Snapshot, host: &str) -> Option<ExportMetricsServiceRequest> {
    if snapshot.generated_ns == 0 {
        return None;
    }
    let start = snapshot.reader.started_ns;
    let now = snapshot.generated_ns;
    let durations = &snapshot.stats.request_durations;
    let bounds: Vec<f64> = durations
        .bounds_ns
        .iter()
        .map(|&ns| ns as f64 / 1e9)
        .collect();
    let point_attributes = |h: &DurationHistogram| vec![kv_str("http.route", h.name.as_str())];

    let histogram_points = durations
        .routes
        .iter()
        .map(|h| HistogramDataPoint {
            attributes: point_attributes(h),
            start_time_unix_nano: start,
            time_unix_nano: now,
            count: h.count,
            sum: Some(h.sum_secs),
            bucket_counts: bucket_counts(h, bounds.len()),
            explicit_bounds: bounds.clone(),
            ..HistogramDataPoint::default()
        })
        .collect();
    let sum_points = |value: fn(&DurationHistogram) -> u64| {
        durations
            .routes
            .iter()
            .map(|h| int_point(point_attributes(h), start, now, value(h)))
            .collect::<Vec<_>>()
    };
    let t = &snapshot.stats.totals;
    let events = [
        ("REQ", t.requests),
        ("FN", t.functions),
        ("DB", t.queries),
        ("CUSTOM", t.custom),
    ]
    .into_iter()
    .map(|(kind, n)| int_point(vec![kv_str("profilis.event.kind", kind)], start, now, n))
    .collect();

    let metrics = vec![
        Metric {
            name: "profilis.request.duration".into(),
            description: "Request (REQ event) durations since the reader started, per route."
                .into(),
            unit: "s".into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: histogram_points,
                aggregation_temporality: CUMULATIVE,
            })),
            ..Metric::default()
        },
        sum(
            "profilis.requests",
            "Requests since the reader started, per route.",
            "{request}",
            sum_points(|h| h.count),
        ),
        sum(
            "profilis.request.errors",
            "Requests that were errors (status >= 500 or an error flag) since the reader started, per route.",
            "{request}",
            sum_points(|h| h.errors),
        ),
        sum(
            "profilis.events",
            "Events drained since the reader started, by kind.",
            "{event}",
            events,
        ),
    ];
    let instance = format!("{host}:{}", snapshot.reader.pid);
    let service = common_service(snapshot).unwrap_or(DEFAULT_SERVICE);
    let extra = [kv_str("service.instance.id", instance)];
    Some(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource(service, host, &extra)),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics,
                schema_url: SCHEMA_URL.to_string(),
            }],
            schema_url: SCHEMA_URL.to_string(),
        }],
    })
}

/// Per-bucket (not cumulative) counts of a histogram of `bounds` buckets,
/// with the `+Inf` bucket last, as OTLP wants them.
fn bucket_counts(h: &DurationHistogram, bounds: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity(bounds + 1);
    let mut previous = 0;
    for i in 0..bounds {
        let cumulative = h.cumulative.get(i).copied().unwrap_or(h.count);
        out.push(cumulative.saturating_sub(previous));
        previous = cumulative;
    }
    out.push(h.count.saturating_sub(previous));
    out
}

fn int_point(attributes: Vec<KeyValue>, start: u64, now: u64, value: u64) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: now,
        value: Some(number_data_point::Value::AsInt(
            i64::try_from(value).unwrap_or(i64::MAX),
        )),
        ..NumberDataPoint::default()
    }
}

fn sum(name: &str, description: &str, unit: &str, data_points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: description.into(),
        unit: unit.into(),
        data: Some(metric::Data::Sum(Sum {
            data_points,
            aggregation_temporality: CUMULATIVE,
            is_monotonic: true,
        })),
        ..Metric::default()
    }
}

/// The service every writer of every ring names, if there is exactly one.
fn common_service(snapshot: &Snapshot) -> Option<&str> {
    let mut found: Option<&str> = None;
    for w in snapshot.rings.iter().flat_map(|r| &r.writers) {
        let service = w.service.as_deref()?;
        match found {
            None => found = Some(service),
            Some(f) if f == service => {}
            Some(_) => return None,
        }
    }
    found
}

/// The integer value of a sum's data point.
pub fn int_value(point: &NumberDataPoint) -> Option<i64> {
    match point.value {
        Some(number_data_point::Value::AsInt(v)) => Some(v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::{ReaderMetrics, RequestDurations, RingStatus, StatsSnapshot, WriterStatus};
    use crate::window::durations::BUCKET_BOUNDS_NS;

    #[test]
    fn histogram_points_are_per_bucket_and_cumulative_in_time() {
        let mut cumulative = vec![0u64; BUCKET_BOUNDS_NS.len()];
        // 2 requests <= 100 µs, 1 <= 1 ms, 1 above 10 s.
        for (i, c) in cumulative.iter_mut().enumerate() {
            *c = if i < 3 { 2 } else { 3 };
        }
        let route = DurationHistogram {
            name: "/a".into(),
            cumulative,
            count: 4,
            errors: 1,
            sum_secs: 12.5,
            ..DurationHistogram::default()
        };
        let snapshot = Snapshot {
            generated_ns: 2_000,
            stats: StatsSnapshot {
                request_durations: RequestDurations {
                    bounds_ns: BUCKET_BOUNDS_NS.to_vec(),
                    all: route.clone(),
                    routes: vec![route],
                    ..RequestDurations::default()
                },
                ..StatsSnapshot::default()
            },
            rings: vec![RingStatus {
                writers: vec![WriterStatus {
                    service: Some("shop".into()),
                    ..WriterStatus::default()
                }],
                ..RingStatus::default()
            }],
            reader: ReaderMetrics {
                started_ns: 1_000,
                pid: 9,
                ..ReaderMetrics::default()
            },
            ..Snapshot::default()
        };
        let req = request(&snapshot, "h1").unwrap();
        let rm = &req.resource_metrics[0];
        let attrs = &rm.resource.as_ref().unwrap().attributes;
        let get = |k: &str| {
            attrs
                .iter()
                .find(|kv| kv.key == k)
                .and_then(|kv| kv.value.clone())
                .and_then(|v| v.value)
        };
        use opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue;
        assert_eq!(get("service.name"), Some(StringValue("shop".into())));
        assert_eq!(get("service.instance.id"), Some(StringValue("h1:9".into())));
        let metrics = &rm.scope_metrics[0].metrics;
        let Some(metric::Data::Histogram(h)) = &metrics[0].data else {
            panic!("histogram first");
        };
        assert_eq!(h.aggregation_temporality, CUMULATIVE);
        let p = &h.data_points[0];
        assert_eq!((p.start_time_unix_nano, p.time_unix_nano), (1_000, 2_000));
        assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
        assert_eq!(&p.bucket_counts[..4], &[2, 0, 0, 1]);
        assert_eq!(*p.bucket_counts.last().unwrap(), 1);
        assert_eq!(p.bucket_counts.iter().sum::<u64>(), p.count);
        assert_eq!(p.explicit_bounds[0], 0.0001);
        let Some(metric::Data::Sum(errors)) = &metrics[2].data else {
            panic!("errors sum");
        };
        assert!(errors.is_monotonic);
        assert_eq!(int_value(&errors.data_points[0]), Some(1));
        assert!(request(&Snapshot::default(), "h").is_none());
    }
}
