//! Rings: their state and counters, their string tables, their writer
//! processes, and the losses per producer process.

use super::text::Out;
use crate::views::{RingStatus, Snapshot, StringLimit};
use std::collections::BTreeMap;

/// Every ring family, labelled `ring` (the file) and `ring_id`.
pub(super) fn render(out: &mut Out, snapshot: &Snapshot) {
    type Field = fn(&RingStatus) -> f64;
    let gauges: [(&str, &str, Field); 8] = [
        ("profilis_ring_capacity", "Slots of the ring.", |r| {
            r.capacity as f64
        }),
        (
            "profilis_ring_lag",
            "Events written but not yet drained (queue depth), all lanes together.",
            |r| r.lag as f64,
        ),
        (
            "profilis_ring_lanes",
            "Lanes of the ring (one writer thread each at a time).",
            |r| r.lanes as f64,
        ),
        (
            "profilis_ring_lanes_held",
            "Lanes held by a writer thread.",
            |r| r.lanes_held as f64,
        ),
        (
            "profilis_ring_fullest_lane_ratio",
            "How full the fullest lane is (0 to 1); its writer loses events at 1.",
            |r| r.depth_ratio,
        ),
        (
            "profilis_ring_attached",
            "1 while the reader is attached to the ring.",
            |r| f64::from(u8::from(r.attached)),
        ),
        (
            "profilis_ring_truncated",
            "1 if the ring file was truncated while attached.",
            |r| f64::from(u8::from(r.truncated)),
        ),
        (
            "profilis_ring_lost_last_minute",
            "Events lost (dropped, abandoned, torn) in about the last minute.",
            |r| r.lost_last_minute as f64,
        ),
    ];
    for (name, help, field) in gauges {
        out.family(name, "gauge", help);
        for r in &snapshot.rings {
            out.sample(
                name,
                &[("ring", &r.path), ("ring_id", &r.ring_id)],
                field(r),
            );
        }
    }
    let counters: [(&str, &str, Field); 10] = [
        (
            "profilis_ring_claimed_total",
            "Emit attempts since the ring was created.",
            |r| r.counters.claimed as f64,
        ),
        (
            "profilis_ring_received_total",
            "Events delivered to a reader since the ring was created.",
            |r| r.counters.received as f64,
        ),
        (
            "profilis_ring_dropped_total",
            "Events lost to a full ring since it was created.",
            |r| r.counters.dropped as f64,
        ),
        (
            "profilis_ring_abandoned_total",
            "Events whose writer died in the middle of them.",
            |r| r.counters.abandoned as f64,
        ),
        (
            "profilis_ring_messages_lost_total",
            "Exception messages a writer gave up on (a newer message took the slot).",
            |r| r.messages_lost as f64,
        ),
        (
            "profilis_ring_messages_unread_total",
            "Exception messages overwritten by newer ones before the reader read them.",
            |r| r.messages_unread as f64,
        ),
        (
            "profilis_ring_names_unresolved_total",
            "Name ids of events that did not resolve to text.",
            |r| r.unresolved as f64,
        ),
        (
            "profilis_ring_repairs_total",
            "Lanes found holding positions no writer produces (a damaged file), and reset.",
            |r| r.repairs as f64,
        ),
        (
            "profilis_ring_torn_total",
            "Records that failed validation.",
            |r| r.counters.torn as f64,
        ),
        (
            "profilis_ring_exported_total",
            "Events of the ring written by the file exporter since the reader started.",
            |r| r.exported as f64,
        ),
    ];
    for (name, help, field) in counters {
        out.family(name, "counter", help);
        for r in &snapshot.rings {
            out.sample(
                name,
                &[("ring", &r.path), ("ring_id", &r.ring_id)],
                field(r),
            );
        }
    }
    out.family(
        "profilis_ring_writers",
        "gauge",
        "Writer processes registered in the ring, by state.",
    );
    for r in &snapshot.rings {
        let alive = r.writers.iter().filter(|w| w.alive).count();
        for (state, n) in [("alive", alive), ("exited", r.writers.len() - alive)] {
            out.sample(
                "profilis_ring_writers",
                &[("ring", &r.path), ("ring_id", &r.ring_id), ("state", state)],
                n as f64,
            );
        }
    }
    strings(out, &snapshot.limits.strings);
}

/// The string table of each ring.
fn strings(out: &mut Out, tables: &[StringLimit]) {
    type Field = fn(&StringLimit) -> f64;
    let strings: [(&str, &str, &str, Field); 3] = [
        (
            "profilis_ring_string_entries",
            "gauge",
            "String-table entries of the ring (distinct names it can hold).",
            |t| t.entries as f64,
        ),
        (
            "profilis_ring_string_entries_used",
            "gauge",
            "String-table entries of the ring in use.",
            |t| t.entries_used as f64,
        ),
        (
            "profilis_ring_string_overflow_total",
            "counter",
            "Names recorded as <overflow> because the ring's string table was full.",
            |t| t.overflow as f64,
        ),
    ];
    for (name, kind, help, field) in strings {
        out.family(name, kind, help);
        for t in tables {
            out.sample(
                name,
                &[("ring", &t.ring), ("ring_id", &t.ring_id)],
                field(t),
            );
        }
    }
}

/// Per-producer losses (summed over rings per pid and service) and the
/// writers' liveness.
pub(super) fn producers(out: &mut Out, snapshot: &Snapshot) {
    let mut dropped: BTreeMap<(String, String), [u64; 4]> = BTreeMap::new();
    for p in &snapshot.producers.losses {
        let pid = p
            .pid
            .map_or_else(|| "unknown".to_string(), |p| p.to_string());
        let service = p.service.clone().unwrap_or_default();
        let c = dropped.entry((pid, service)).or_default();
        c[0] += p.ring_full;
        c[1] += p.overwritten;
        c[2] += p.abandoned;
        c[3] += p.torn;
    }
    out.family(
        "profilis_events_dropped_total",
        "counter",
        "Events lost per producer process since the reader started, by cause: ring_full (refused, \
         ring full), overwritten (overwritten unread), abandoned (claimed, never committed), torn \
         (failed validation). pid=\"unknown\" when no process can be named. Equal to the sums of \
         the LOSS markers.",
    );
    for ((pid, service), c) in &dropped {
        for (cause, n) in ["ring_full", "overwritten", "abandoned", "torn"]
            .iter()
            .zip(c)
        {
            out.sample(
                "profilis_events_dropped_total",
                &[("pid", pid), ("service", service), ("cause", cause)],
                *n as f64,
            );
        }
    }
    out.family(
        "profilis_writer_alive",
        "gauge",
        "1 while a writer process of the ring runs, 0 once it is gone (or its pid was reused).",
    );
    writers(out, snapshot, "profilis_writer_alive", |w| {
        f64::from(u8::from(w.alive))
    });
    let last_seen = |w: &crate::views::WriterStatus| w.last_seen_ns as f64 / 1e9;
    out.family(
        "profilis_writer_last_seen_timestamp_seconds",
        "gauge",
        "Unix time a writer process was last seen (its latest event or heartbeat), seconds.",
    );
    writers(
        out,
        snapshot,
        "profilis_writer_last_seen_timestamp_seconds",
        last_seen,
    );
    out.deprecated(
        "profilis_writer_last_seen_seconds",
        "gauge",
        "profilis_writer_last_seen_timestamp_seconds",
    );
    writers(
        out,
        snapshot,
        "profilis_writer_last_seen_seconds",
        last_seen,
    );
}

/// One sample of `name` per writer process of each ring.
fn writers(
    out: &mut Out,
    snapshot: &Snapshot,
    name: &str,
    value: impl Fn(&crate::views::WriterStatus) -> f64,
) {
    for r in &snapshot.rings {
        for w in &r.writers {
            let pid = w.pid.to_string();
            out.sample(
                name,
                &[
                    ("ring", &r.path),
                    ("ring_id", &r.ring_id),
                    ("pid", &pid),
                    ("service", w.service.as_deref().unwrap_or("")),
                ],
                value(w),
            );
        }
    }
}
