//! Exporters: where drained events go besides the statistics. Each one is a
//! file implementing [`Exporter`]; the drain loop hands every batch of every
//! ring to each exporter before it commits the batch.

pub mod console;
pub mod jsonl;
pub mod otlp;
pub mod prometheus;
pub mod web;

use crate::ingest::loss::{LossCursor, LossMarker};
use crate::ingest::Batch;
use crate::ingest::RingContext;
use crate::views::{ExporterCounts, ExporterStatus, SnapshotHandle};
use std::time::Instant;

/// What became of one batch in one exporter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exported {
    /// Events written. An exporter that learns only later whether they
    /// arrived (OTLP) counts none here and reports them through
    /// [`Exporter::ring_counts`].
    pub written: u64,
    /// Events that could not be written (counted loss).
    pub lost: u64,
    /// Events not written because an earlier run already had (after a
    /// restart, exactly-once JSONL).
    pub skipped: u64,
}

/// A destination for events.
pub trait Exporter: Send {
    /// Short name (`jsonl`, `console`).
    fn name(&self) -> &'static str;

    /// Whether its counts are the ones `--accounting` reports as
    /// `exported` / `export_lost` (the JSONL exporter when there is one).
    fn is_primary(&self) -> bool {
        false
    }

    /// Writes one batch of `ctx`'s ring. Called before the batch is
    /// committed: an exporter that returns has either written the events or
    /// counted them as lost. Never fails: errors are reported and counted.
    fn export(&mut self, ctx: &mut RingContext, batch: &Batch<'_>) -> Exported;

    /// Writes one batch together with the LOSS markers the reader found in
    /// it (see [`crate::ingest::loss`]): each marker goes before the event at its
    /// `before_event`. Called instead of [`export`](Exporter::export)
    /// whenever a batch has events or markers. The default ignores the
    /// markers.
    fn export_with_losses(
        &mut self,
        ctx: &mut RingContext,
        batch: &Batch<'_>,
        _losses: &LossBatch<'_>,
    ) -> Exported {
        if batch.events().is_empty() {
            return Exported::default();
        }
        self.export(ctx, batch)
    }

    /// Where the LOSS markers of ring `ring_id` stand in this exporter's
    /// output from an earlier run, so that a restarted reader neither
    /// repeats nor skips any (the JSONL exporter's).
    fn loss_cursor(&self, _ring_id: u64) -> Option<LossCursor> {
        None
    }

    /// Its final counts for the ring attached as `slot`
    /// ([`RingContext::slot`]), for an exporter that learns what became
    /// of the events only after [`export`](Exporter::export) returned
    /// (the OTLP exporter: accepted by the receiver, or given up on).
    /// Asked after [`finish`](Exporter::finish); replaces the sums of the
    /// per-batch [`Exported`] results in the `--accounting` line. `None`:
    /// those sums stand.
    fn ring_counts(&self, _slot: u32) -> Option<ExporterCounts> {
        None
    }

    /// Hands over where the drain loop publishes its snapshots (called
    /// once, before the first batch), for exporters that send statistics.
    fn attach_snapshots(&mut self, _snapshots: &SnapshotHandle) {}

    /// Housekeeping after a committed batch and on idle ticks: rotation,
    /// retention, retrying after errors.
    fn maintain(&mut self, _now: Instant) {}

    /// Final flush and close (shutdown, `--once`).
    fn finish(&mut self) {}

    /// Its figures for the self-metrics.
    fn status(&self) -> ExporterStatus;

    /// Disk used by its files and its retention bounds, for an exporter
    /// that writes files.
    fn disk_use(&self) -> Option<DiskUse> {
        None
    }
}

/// Disk use of a file exporter against its retention bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskUse {
    /// Bytes of its files (closed and current) at the last retention pass,
    /// plus what the current file grew since.
    pub bytes: u64,
    /// Closed files.
    pub files: u64,
    /// `--retain-bytes`.
    pub retain_bytes: Option<u64>,
    /// `--retain-files`.
    pub retain_files: Option<u64>,
    /// Closed files deleted to stay under `retain_bytes`.
    pub deleted_for_bytes: u64,
    /// Closed files deleted to stay under `retain_files`.
    pub deleted_for_files: u64,
}

/// The LOSS markers of one batch, and where the ring's markers stand once
/// they are written.
#[derive(Clone, Copy, Debug)]
pub struct LossBatch<'a> {
    /// Markers, in output order.
    pub markers: &'a [LossMarker],
    /// The ring's cumulative loss counts after them, and per-writer marks.
    pub cursor: &'a LossCursor,
}
