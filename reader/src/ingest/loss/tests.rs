//! Loss accounting over real rings and hand-made observations.

use super::*;
use profilis::{Consumer, Ring, RingOptions};

fn observe(
    tracker: &mut LossTracker,
    consumer: &mut Consumer,
    ctx: &mut RingContext,
    now_ns: u64,
    force: bool,
) -> Vec<LossMarker> {
    consumer.read(4096);
    ctx.refresh_writers(&consumer.writers(), None, Instant::now());
    let batch = consumer.batch();
    let obs = Observation {
        counters: consumer.counters(),
        lost: batch.losses,
        untold: batch.losses_untold,
        events: batch.events,
        wall_ns: &|e| batch.wall_ns(e),
        now_ns,
        now: Instant::now(),
        force,
    };
    let markers = tracker.observe(&obs, ctx, &mut || consumer.writers());
    consumer.commit();
    consumer.take_losses();
    markers
}

fn sum(markers: &[LossMarker]) -> LossTotals {
    let mut t = LossTotals::default();
    for m in markers {
        t.add(&m.counts);
    }
    t
}

#[test]
fn drops_and_abandoned_claims_are_attributed_and_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.ring");
    let ring =
        Ring::create_or_open(&path, RingOptions::default().capacity(8).service("svc")).unwrap();
    let mut consumer = Consumer::attach_with(
        &path,
        profilis::ConsumerOptions {
            liveness_interval: Duration::from_millis(1),
        },
    )
    .unwrap();
    let info = *consumer.info();
    let mut ctx = RingContext::new(0, &path, info.ring_id, 4096);
    let mut tracker = LossTracker::new(info.created_wall_ns, None);
    ring.emit_fn("a", 1, false);
    // Begun and never finished, as a writer killed mid-event leaves it.
    drop(ring.claim().unwrap());
    for _ in 0..10 {
        ring.emit_fn("b", 2, false);
    }
    let mut all = observe(&mut tracker, &mut consumer, &mut ctx, 10, true);
    let end = Instant::now() + Duration::from_secs(5);
    while consumer.counters().in_flight > 0 && Instant::now() < end {
        all.extend(observe(&mut tracker, &mut consumer, &mut ctx, 20, true));
    }
    all.extend(observe(&mut tracker, &mut consumer, &mut ctx, 30, true));
    let c = consumer.counters();
    assert_eq!((c.dropped, c.abandoned), (4, 1), "{c:?}");
    assert_eq!(sum(&all), totals_of(&c));
    assert_eq!(tracker.marked(), totals_of(&c));
    assert_eq!(all.last().unwrap().cumulative, totals_of(&c));
    let me = std::process::id();
    let abandoned = all.iter().find(|m| m.counts.abandoned == 1).unwrap();
    assert_eq!(
        abandoned.pid,
        Some(me),
        "the claim's stamp names its writer"
    );
    assert_eq!(abandoned.service.as_deref(), Some("svc"));
    let dropped: u64 = all
        .iter()
        .filter(|m| m.pid == Some(me))
        .map(|m| m.counts.dropped)
        .sum();
    assert_eq!(dropped, 4, "refused events charged to this process");
    let producers = tracker.producers("l.ring", "x", &consumer.writers());
    assert_eq!(producers.len(), 1);
    assert_eq!(
        (
            producers[0].ring_full,
            producers[0].abandoned,
            producers[0].total
        ),
        (4, 1, 5)
    );
}

#[test]
fn a_cursor_from_an_earlier_run_is_not_marked_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.ring");
    let ring = Ring::create_or_open(&path, RingOptions::default().capacity(4)).unwrap();
    for _ in 0..6 {
        ring.emit_fn("x", 1, false);
    }
    let mut consumer = Consumer::attach(&path).unwrap();
    let info = *consumer.info();
    let mut ctx = RingContext::new(0, &path, info.ring_id, 4096);
    // An earlier run marked one of the two drops.
    let cursor = LossCursor {
        cumulative: LossTotals {
            dropped: 1,
            ..LossTotals::default()
        },
        to_ts_ns: 5,
        writers: Vec::new(),
    };
    let mut tracker = LossTracker::new(1, Some(cursor));
    let markers = observe(&mut tracker, &mut consumer, &mut ctx, 50, true);
    assert_eq!(sum(&markers).dropped, 1, "{markers:?}");
    assert_eq!(markers[0].from_ts_ns, 5, "from where the last marker ended");
    assert_eq!(markers.last().unwrap().cumulative.dropped, 2);
    assert!(observe(&mut tracker, &mut consumer, &mut ctx, 60, true).is_empty());
}

#[test]
fn gap_markers_sit_between_the_events_around_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.ring");
    let ring = Ring::create_or_open(&path, RingOptions::default().capacity(16)).unwrap();
    let consumer = Consumer::attach(&path).unwrap();
    let info = *consumer.info();
    let ctx = RingContext::new(0, &path, info.ring_id, 4096);
    let mut tracker = LossTracker::new(info.created_wall_ns, None);
    let events: Vec<Event> = [(0u64, 100u64), (1, 110), (3, 130), (4, 140)]
        .iter()
        .map(|&(position, ts_mono_ns)| Event {
            position,
            ts_mono_ns,
            ..crate::support::test_event::blank()
        })
        .collect();
    let torn = [Loss {
        position: 2,
        cause: LossCause::Torn,
        pid: 0,
        writer: NO_WRITER,
        before_event: 2,
    }];
    drop(ring);
    let obs = Observation {
        counters: Counters {
            claimed: 5,
            received: 4,
            tail: 5,
            ..Counters::default()
        },
        lost: &torn,
        untold: 0,
        events: &events,
        wall_ns: &|e| e.ts_mono_ns,
        now_ns: 200,
        now: Instant::now(),
        force: false,
    };
    let markers = tracker.observe(&obs, &ctx, &mut || consumer.writers());
    assert_eq!(markers.len(), 1);
    let m = &markers[0];
    assert_eq!((m.before_event, m.from_ts_ns, m.to_ts_ns), (2, 110, 130));
    assert_eq!((m.pid, m.counts.torn, m.cumulative.torn), (None, 1, 1));
    assert_eq!(tracker.cursor().cumulative.torn, 1);
}

#[test]
fn a_batch_delivered_again_after_a_restart_marks_only_its_new_losses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.ring");
    let ring = Ring::create_or_open(&path, RingOptions::default().capacity(16)).unwrap();
    let consumer = Consumer::attach(&path).unwrap();
    let info = *consumer.info();
    let ctx = RingContext::new(0, &path, info.ring_id, 4096);
    drop(ring);
    // The killed run wrote the batch with a marker for the torn record
    // at position 1; the batch comes again, now with a second one at 3.
    let cursor = LossCursor {
        cumulative: LossTotals {
            torn: 1,
            ..LossTotals::default()
        },
        to_ts_ns: 120,
        writers: Vec::new(),
    };
    let mut tracker = LossTracker::new(info.created_wall_ns, Some(cursor));
    let events: Vec<Event> = [(0u64, 100u64), (2, 130), (4, 150)]
        .iter()
        .map(|&(position, ts_mono_ns)| Event {
            position,
            ts_mono_ns,
            ..crate::support::test_event::blank()
        })
        .collect();
    let torn = |position, before_event| Loss {
        position,
        cause: LossCause::Torn,
        pid: 0,
        writer: NO_WRITER,
        before_event,
    };
    let pending = [torn(1, 1), torn(3, 2)];
    let obs = Observation {
        counters: Counters {
            claimed: 5,
            tail: 5,
            ..Counters::default()
        },
        lost: &pending,
        untold: 0,
        events: &events,
        wall_ns: &|e| e.ts_mono_ns,
        now_ns: 200,
        now: Instant::now(),
        force: false,
    };
    let markers = tracker.observe(&obs, &ctx, &mut || consumer.writers());
    assert_eq!(markers.len(), 1, "{markers:?}");
    assert_eq!(
        markers[0].before_event, 2,
        "the second one, between 2 and 4"
    );
    assert_eq!((markers[0].counts.torn, markers[0].cumulative.torn), (1, 2));
}
