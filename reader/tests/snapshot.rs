//! The drain loop publishes snapshots with statistics, ring status and the
//! reader's self-metrics (what the dashboard will serve).

mod common;

use common::*;
use profilis_reader::app::drain::{Drain, DrainOptions};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[test]
fn drain_publishes_stats_rings_and_self_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let ring_path = tmp.path().join("s.ring");
    let ring = ring(&ring_path, 4096);
    write_events(&ring, 1000);
    let drain = Drain::new(
        DrainOptions {
            rings: vec![ring_path.clone()],
            once: true,
            ..DrainOptions::default()
        },
        Vec::new(),
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    let handle = drain.snapshots();
    let report = drain.run();
    assert_eq!(report.rings[0].received, 1000);
    let s = handle.load();
    assert_eq!(s.reader.events, 1000);
    assert!(s.reader.batches >= 1);
    assert_eq!(s.rings.len(), 1);
    let r = &s.rings[0];
    assert_eq!(r.capacity, 4096);
    assert_eq!(r.policy, "drop-newest");
    assert_eq!(
        (r.counters.received, r.counters.claimed, r.lag),
        (1000, 1000, 0)
    );
    assert_eq!(r.writers.len(), 1);
    assert!(r.writers[0].alive, "this test process is the writer");
    assert_eq!(r.writers[0].service.as_deref(), Some("test-svc"));
    assert_eq!(s.stats.totals.events, 1000);
    assert_eq!(
        s.stats.requests.count, 400,
        "two in five events are requests"
    );
    assert_eq!(s.stats.routes.len(), 4);
    assert!(s.stats.requests.p50_ns > 0 && s.stats.requests.p99_ns >= s.stats.requests.p50_ns);
    assert!(!s.stats.errors.is_empty());
    assert_eq!(s.stats.custom[0].name, "gauge");
    // The snapshot is what the web UI serialises.
    let json = serde_json::to_value(&*s).unwrap();
    assert!(json["stats"]["routes"].is_array() && json["reader"]["events_per_sec"].is_number());
}
