//! The health verdict of a snapshot: `ok`, or `degraded` with the reasons.
//! Served by `/health` and metrics.json, and as `profilis_reader_degraded`
//! by `/metrics`.
//!
//! Degraded when, for any ring: its file was truncated while attached, it
//! lost events (dropped, abandoned or torn) in about the last minute, one of
//! its lanes is at least 90% full (its writer is about to drop), or it held
//! lane positions no writer produces (a damaged file); or when an exporter
//! lost events in
//! about the last minute; or when a limit that loses data or detail is being
//! hit: ring files refused by `--max-rings` and still waiting, events folded
//! into `(other)` by `--max-routes` in about the last minute, names that
//! found a ring's string table full in about the last minute. Limits that
//! only discard the oldest on purpose (`--max-errors`, JSONL retention) are
//! reported under `limits` but do not degrade. A ring detached by `--watch`
//! because all its writers exited is not a problem.

use super::{Limits, Snapshot};

/// Fill level of a ring's fullest lane from which the ring counts as
/// degraded.
pub const FULL_RATIO: f64 = 0.9;

/// Why the reader is degraded; empty when it is not.
pub fn assess(s: &Snapshot) -> Vec<String> {
    let mut reasons = Vec::new();
    for r in &s.rings {
        if r.truncated {
            reasons.push(format!(
                "ring {} was truncated while attached: nothing more can be read from it",
                r.path
            ));
        }
        if r.lost_last_minute > 0 {
            reasons.push(format!(
                "ring {} lost {} events in the last minute (dropped, abandoned or torn)",
                r.path, r.lost_last_minute
            ));
        }
        if r.attached && r.depth_ratio >= FULL_RATIO {
            reasons.push(format!(
                "ring {} has a lane {:.0}% full: the reader is falling behind its writer",
                r.path,
                r.depth_ratio * 100.0
            ));
        }
        if r.repairs > 0 {
            reasons.push(format!(
                "ring {} held lane positions no writer produces (a damaged or tampered file): {} lanes reset",
                r.path, r.repairs
            ));
        }
    }
    if s.reader.export_lost_last_minute > 0 {
        reasons.push(format!(
            "exporters failed to write {} events in the last minute",
            s.reader.export_lost_last_minute
        ));
    }
    limit_reasons(&s.limits, &mut reasons);
    reasons
}

/// The reasons of limits being hit in a way that loses data or detail.
fn limit_reasons(l: &Limits, reasons: &mut Vec<String>) {
    if !l.rings.waiting.is_empty() {
        reasons.push(format!(
            "{} ring files are not attached because {} rings are (--max-rings): {}",
            l.rings.waiting.len(),
            l.rings.used,
            l.rings.waiting.join(", ")
        ));
    }
    if l.routes.hits_last_minute > 0 {
        reasons.push(format!(
            "{} events in the last minute were counted under (other): more than --max-routes {} distinct names",
            l.routes.hits_last_minute,
            l.routes.limit.unwrap_or(0)
        ));
    }
    for t in &l.strings {
        if t.overflow_last_minute > 0 {
            reasons.push(format!(
                "ring {}: the string table is full ({} of {} entries, {} of {} bytes); {} names in the last minute were recorded as <overflow>",
                t.ring,
                t.entries_used,
                t.entries,
                t.arena_used,
                t.arena_bytes,
                t.overflow_last_minute
            ));
        }
    }
}

/// `ok` without reasons, else `degraded`.
pub fn status(reasons: &[String]) -> &'static str {
    if reasons.is_empty() {
        "ok"
    } else {
        "degraded"
    }
}
