//! Unit tests of the lane protocol on heap rings, one thread (the loom
//! models in `loom-tests/` cover the interleavings).

use super::*;
use crate::layout::{seq_writing, MAX_LANE_POSITION};
use crate::record::{Kind, Method, MsgRef, StrId};
use crate::sync::Ordering::Relaxed;
use crate::testing::OwnedRing;

fn event(n: u64) -> crate::record::Event {
    crate::record::Event {
        position: 0,
        lane: 0,
        kind: Kind::Fn,
        flags: 0,
        method: Method::None,
        status: 0,
        name: StrId(1),
        exception_type: StrId::NONE,
        message: MsgRef(0),
        pid: 1,
        tid: 2,
        ts_mono_ns: n,
        dur_ns: n,
        trace_id: 0,
        span_id: 0,
        parent_span_id: 0,
        value: n,
        value2: 0,
        writer: 0,
    }
}

fn who(tid: u32) -> Owner {
    Owner {
        pid: 4242,
        tid,
        start_time: 77,
        writer: 3,
    }
}

fn emit(ring: RingRef<'_>, cursor: &mut LaneCursor, n: u64) -> Result<Written, Full> {
    ring.write(cursor, |pos| event(n).encode(pos))
}

/// Reads and commits until a read makes no progress.
fn drain(core: &mut ConsumerCore, ring: RingRef<'_>) -> Vec<u64> {
    let mut values = Vec::new();
    loop {
        let before = core.state().heads.clone();
        values.extend(core.read(ring, usize::MAX).iter().map(|e| e.value));
        core.commit(ring);
        if core.state().heads == before {
            return values;
        }
    }
}

#[test]
fn events_arrive_in_lane_order_and_counters_add_up() {
    let owned = OwnedRing::events_only(1, 8, false);
    let ring = owned.view();
    let mut core = ConsumerCore::attach(ring).unwrap();
    let mut c = ring.lock_shared_lane(&who(1), 0).unwrap();
    for n in 0..5 {
        emit(ring, &mut c, n).unwrap();
    }
    assert_eq!(drain(&mut core, ring), vec![0, 1, 2, 3, 4]);
    for n in 5..13 {
        emit(ring, &mut c, n).unwrap();
    }
    assert_eq!(drain(&mut core, ring), (5..13).collect::<Vec<_>>());
    let k = core.counters(ring);
    assert_eq!((k.claimed, k.received, k.in_flight), (13, 13, 0));
    assert!(k.identity_holds());
}

#[test]
fn two_lanes_are_read_independently_with_unique_positions() {
    let owned = OwnedRing::events_only(4, 4, false);
    let ring = owned.view();
    let mut core = ConsumerCore::attach(ring).unwrap();
    let mut a = ring.acquire_lane(&who(1), 0).unwrap();
    let mut b = ring.acquire_lane(&who(2), 0).unwrap();
    assert_ne!(a.lane, b.lane);
    for n in 0..3 {
        emit(ring, &mut a, n).unwrap();
        emit(ring, &mut b, 100 + n).unwrap();
    }
    let got: Vec<_> = core.read(ring, 100).to_vec();
    let mut positions: Vec<u64> = got.iter().map(|e| e.position).collect();
    positions.sort();
    positions.dedup();
    assert_eq!(positions.len(), 6);
    for e in &got {
        assert_eq!(e.position % 4, e.lane as u64);
    }
    let of = |lane: u32| {
        got.iter()
            .filter(|e| e.lane as u32 == lane)
            .map(|e| e.value)
            .collect::<Vec<_>>()
    };
    assert_eq!(of(a.lane), vec![0, 1, 2]);
    assert_eq!(of(b.lane), vec![100, 101, 102]);
    core.commit(ring);
    let k = core.counters(ring);
    assert_eq!((k.claimed, k.received, k.in_flight), (6, 6, 0));
}

#[test]
fn own_lanes_run_out_and_the_shared_lane_takes_the_rest() {
    let owned = OwnedRing::events_only(4, 4, false);
    let ring = owned.view();
    assert_eq!(ring.own_lanes(), 3);
    let held: Vec<_> = (0..3)
        .map(|t| ring.acquire_lane(&who(t), t as usize).unwrap())
        .collect();
    assert!(ring.acquire_lane(&who(9), 0).is_none());
    let shared = ring.lock_shared_lane(&who(9), 0).unwrap();
    assert_eq!(shared.lane, 3);
    assert!(
        ring.lock_shared_lane(&who(10), 0).is_none(),
        "locked for one event"
    );
    ring.release_lane(&shared, &who(9));
    assert!(ring.lock_shared_lane(&who(10), 0).is_some());
    ring.release_lane(&held[0], &who(0));
    assert_eq!(ring.acquire_lane(&who(11), 0).unwrap().lane, held[0].lane);
}

#[test]
fn a_released_lane_continues_at_its_tail_for_the_next_holder() {
    let owned = OwnedRing::events_only(2, 4, false);
    let ring = owned.view();
    let mut core = ConsumerCore::attach(ring).unwrap();
    let mut c = ring.acquire_lane(&who(1), 0).unwrap();
    emit(ring, &mut c, 1).unwrap();
    emit(ring, &mut c, 2).unwrap();
    ring.release_lane(&c, &who(1));
    let mut d = ring.acquire_lane(&who(2), 0).unwrap();
    assert_eq!((d.lane, d.pos), (c.lane, 2));
    emit(ring, &mut d, 3).unwrap();
    assert_eq!(drain(&mut core, ring), vec![1, 2, 3]);
}

#[test]
fn full_lane_drops_newest_and_counts_it() {
    let owned = OwnedRing::events_only(1, 4, false);
    let ring = owned.view();
    let mut core = ConsumerCore::attach(ring).unwrap();
    let mut c = ring.lock_shared_lane(&who(1), 0).unwrap();
    for n in 0..4 {
        emit(ring, &mut c, n).unwrap();
    }
    assert_eq!(emit(ring, &mut c, 4), Err(Full));
    assert_eq!(emit(ring, &mut c, 5), Err(Full));
    assert_eq!(drain(&mut core, ring), vec![0, 1, 2, 3]);
    emit(ring, &mut c, 6).unwrap();
    assert_eq!(drain(&mut core, ring), vec![6]);
    let k = core.counters(ring);
    assert_eq!(
        (k.claimed, k.received, k.dropped, k.dropped_full),
        (7, 5, 2, 2)
    );
    assert!(k.identity_holds() && k.in_flight == 0);
}

#[test]
fn overwrite_oldest_keeps_the_newest_and_counts_the_rest() {
    let owned = OwnedRing::events_only(1, 4, true);
    let ring = owned.view();
    let mut core = ConsumerCore::attach(ring).unwrap();
    let mut c = ring.lock_shared_lane(&who(1), 0).unwrap();
    let mut overwrote = 0;
    for n in 0..10 {
        overwrote += emit(ring, &mut c, n).unwrap().overwrote as u32;
    }
    assert_eq!(overwrote, 6);
    assert_eq!(drain(&mut core, ring), vec![6, 7, 8, 9]);
    let k = core.counters(ring);
    assert_eq!(
        (k.claimed, k.received, k.overwritten, k.dropped),
        (10, 4, 6, 6)
    );
    assert!(k.identity_holds() && k.in_flight == 0);
}

#[test]
fn overwrite_of_a_read_but_uncommitted_event_still_counts_it_once() {
    let owned = OwnedRing::events_only(1, 2, true);
    let ring = owned.view();
    let mut core = ConsumerCore::attach(ring).unwrap();
    let mut c = ring.lock_shared_lane(&who(1), 0).unwrap();
    emit(ring, &mut c, 0).unwrap();
    emit(ring, &mut c, 1).unwrap();
    assert_eq!(core.read(ring, 8).len(), 2);
    // The writer laps the batch before it is committed.
    emit(ring, &mut c, 2).unwrap();
    emit(ring, &mut c, 3).unwrap();
    core.commit(ring);
    assert_eq!(drain(&mut core, ring), vec![2, 3]);
    let k = core.counters(ring);
    assert_eq!((k.received, k.overwritten), (4, 0));
    assert!(k.identity_holds() && k.in_flight == 0);
}

#[test]
fn a_writer_stopped_mid_event_holds_up_only_its_own_lane() {
    let owned = OwnedRing::events_only(4, 4, false);
    let ring = owned.view();
    let mut core = ConsumerCore::attach(ring).unwrap();
    let mut stuck = ring.acquire_lane(&who(1), 0).unwrap();
    let mut other = ring.acquire_lane(&who(2), 0).unwrap();
    emit(ring, &mut stuck, 1).unwrap();
    let begun = ring.begin(&mut stuck).unwrap();
    emit(ring, &mut other, 2).unwrap();
    // Nothing waits: both complete events come at once, the begun one is
    // simply not there yet.
    let mut got = drain(&mut core, ring);
    got.sort();
    assert_eq!(got, vec![1, 2]);
    let k = core.counters(ring);
    assert_eq!((k.claimed, k.in_flight), (2, 0));
    // The writer finishes after all.
    ring.finish(&mut stuck, &begun, &event(3).encode(begun.pos));
    assert_eq!(drain(&mut core, ring), vec![3]);
}

#[test]
fn dead_writers_lanes_are_reclaimed_with_their_last_event_counted() {
    let owned = OwnedRing::events_only(4, 4, false);
    let ring = owned.view();
    let mut core = ConsumerCore::attach(ring).unwrap();
    // Writer 1 dies mid-record; writer 2 dies after its record is complete
    // but before publishing it; writer 3 lives.
    let mut a = ring.acquire_lane(&who(1), 0).unwrap();
    emit(ring, &mut a, 10).unwrap();
    ring.begin(&mut a).unwrap();
    let mut b = ring.acquire_lane(&who(2), 0).unwrap();
    let w = ring.begin(&mut b).unwrap();
    ring.fill(&w, &event(20).encode(w.pos));
    let mut c = ring.acquire_lane(&Owner { pid: 99, ..who(3) }, 0).unwrap();
    emit(ring, &mut c, 30).unwrap();

    let mut got = drain(&mut core, ring);
    got.sort();
    assert_eq!(got, vec![10, 30]);
    let mut alive = |pid: u32, _| pid == 99;
    assert_eq!(core.reclaim_dead(ring, &mut alive), 2);
    assert_eq!(ring.lanes[a.lane as usize].owner.load(Relaxed), 0);
    assert_eq!(ring.lanes[b.lane as usize].owner.load(Relaxed), 0);
    assert_ne!(ring.lanes[c.lane as usize].owner.load(Relaxed), 0);
    assert_eq!(drain(&mut core, ring), vec![20]);
    let (losses, untold) = core.take_losses();
    assert_eq!(untold, 0);
    assert_eq!(losses.len(), 1);
    assert_eq!(losses[0].cause, LossCause::Abandoned);
    assert_eq!((losses[0].pid, losses[0].writer), (4242, 3));
    assert_eq!(losses[0].position, ring_position(a.lane as usize, 1, 4));
    let k = core.counters(ring);
    assert_eq!(
        (k.claimed, k.received, k.abandoned, k.in_flight),
        (4, 3, 1, 0)
    );
    assert!(k.identity_holds());
    // The freed lanes are taken again and continue after the dead writer.
    let mut again = ring.acquire_lane(&who(5), a.lane as usize).unwrap();
    assert_eq!((again.lane, again.pos), (a.lane, 2));
    emit(ring, &mut again, 40).unwrap();
    assert_eq!(drain(&mut core, ring), vec![40]);
}

#[test]
fn a_dropped_claim_is_counted_as_abandoned() {
    let owned = OwnedRing::events_only(1, 4, false);
    let ring = owned.view();
    let mut core = ConsumerCore::attach(ring).unwrap();
    let mut c = ring.lock_shared_lane(&who(1), 0).unwrap();
    let w = ring.begin(&mut c).unwrap();
    ring.abandon(&mut c, &w);
    emit(ring, &mut c, 5).unwrap();
    assert_eq!(drain(&mut core, ring), vec![5]);
    let k = core.counters(ring);
    assert_eq!((k.claimed, k.received, k.abandoned), (2, 1, 1));
    assert!(k.identity_holds() && k.in_flight == 0);
}

#[test]
fn uncommitted_read_is_delivered_again_to_the_next_consumer() {
    let owned = OwnedRing::events_only(1, 8, false);
    let ring = owned.view();
    let mut first = ConsumerCore::attach(ring).unwrap();
    let mut c = ring.lock_shared_lane(&who(1), 0).unwrap();
    for n in 0..3 {
        emit(ring, &mut c, n).unwrap();
    }
    assert_eq!(drain(&mut first, ring), vec![0, 1, 2]);
    emit(ring, &mut c, 3).unwrap();
    emit(ring, &mut c, 4).unwrap();
    assert_eq!(first.read(ring, 8).len(), 2);
    drop(first); // dies before commit
    let mut second = ConsumerCore::attach(ring).unwrap();
    assert_eq!(drain(&mut second, ring), vec![3, 4]);
    let k = second.counters(ring);
    assert_eq!((k.received, k.in_flight), (5, 0));
}

#[test]
fn consumer_killed_between_publishing_and_handing_back_is_finished_by_the_next() {
    let owned = OwnedRing::events_only(1, 4, false);
    let ring = owned.view();
    let mut first = ConsumerCore::attach(ring).unwrap();
    let mut c = ring.lock_shared_lane(&who(1), 0).unwrap();
    for n in 0..4 {
        emit(ring, &mut c, n).unwrap();
    }
    assert_eq!(first.read(ring, 8).len(), 4);
    // Reproduce a death after the state was published, before the lane's
    // head moved: the writer still sees a full lane.
    let mut version = first.version;
    let mut next = first.state().clone();
    next.heads[0] = 4;
    next.received = 4;
    next.publish(&ring, &mut version);
    drop(first);
    assert_eq!(emit(ring, &mut c, 9), Err(Full));
    let mut second = ConsumerCore::attach(ring).unwrap();
    assert_eq!(ring.lanes[0].head.load(Relaxed), 4);
    assert!(drain(&mut second, ring).is_empty());
    for n in 4..8 {
        emit(ring, &mut c, n).unwrap();
    }
    assert_eq!(drain(&mut second, ring), vec![4, 5, 6, 7]);
    let k = second.counters(ring);
    assert_eq!((k.received, k.dropped, k.in_flight), (8, 1, 0));
    assert!(k.identity_holds());
}

#[test]
fn inconsistent_stored_state_is_refused() {
    let owned = OwnedRing::events_only(2, 4, false);
    let ring = owned.view();
    let mut version = 0;
    let mut state = ConsumerState::new(2);
    state.heads[1] = 10;
    state.publish(&ring, &mut version);
    let err = ConsumerCore::attach(ring).err().expect("refused");
    assert!(err.what.contains("do not add up"), "{}", err.what);
    state.received = u64::MAX;
    state.abandoned = 11;
    state.publish(&ring, &mut version);
    assert!(ConsumerCore::attach(ring).is_err());
}

#[test]
fn impossible_tails_are_repaired_once_and_never_wait() {
    let owned = OwnedRing::events_only(4, 4, false);
    let ring = owned.view();
    let mut core = ConsumerCore::attach(ring).unwrap();
    // Beyond one lap ahead (drop-newest), behind the head, near 2^64.
    ring.lanes[0].tail.store(100, Relaxed);
    ring.lanes[1].tail.store(u64::MAX - 3, Relaxed);
    ring.lanes[2].tail.store(MAX_LANE_POSITION + 1, Relaxed);
    assert!(core.read(ring, usize::MAX).is_empty());
    core.commit(ring);
    let anomalies = core.take_anomalies();
    assert_eq!(anomalies.len(), 3);
    let k = core.counters(ring);
    assert_eq!((k.repairs, k.in_flight, k.claimed), (3, 0, 0));
    assert!(k.identity_holds());
    // Writers go on from the repaired position.
    let mut c = ring.acquire_lane(&who(1), 0).unwrap();
    emit(ring, &mut c, 7).unwrap();
    assert_eq!(drain(&mut core, ring), vec![7]);
    assert!(core.take_anomalies().is_empty());
}

#[test]
fn slots_with_values_no_writer_stores_count_as_torn() {
    let owned = OwnedRing::events_only(1, 4, false);
    let ring = owned.view();
    let mut core = ConsumerCore::attach(ring).unwrap();
    let mut c = ring.lock_shared_lane(&who(1), 0).unwrap();
    emit(ring, &mut c, 0).unwrap();
    emit(ring, &mut c, 1).unwrap();
    emit(ring, &mut c, 2).unwrap();
    ring.slot(0, 1).seq.store(12345, Relaxed);
    ring.slot(0, 2).words[4].store(0, Relaxed);
    assert_eq!(drain(&mut core, ring), vec![0]);
    let k = core.counters(ring);
    assert_eq!((k.received, k.torn, k.in_flight), (1, 2, 0));
    assert!(k.identity_holds());
    assert_ne!(seq_writing(1), 12345);
}

#[test]
fn a_lane_at_the_position_limit_refuses_events() {
    let owned = OwnedRing::events_only(1, 4, false);
    let ring = owned.view();
    ring.lanes[0].tail.store(MAX_LANE_POSITION, Relaxed);
    ring.lanes[0].head.store(MAX_LANE_POSITION, Relaxed);
    let mut c = ring.lock_shared_lane(&who(1), 0).unwrap();
    assert_eq!(emit(ring, &mut c, 1), Err(Full));
    assert_eq!(ring.lanes[0].dropped.load(Relaxed), 1);
}

#[test]
fn counters_snapshot_of_another_process_matches_the_consumers() {
    let owned = OwnedRing::events_only(2, 4, false);
    let ring = owned.view();
    let mut core = ConsumerCore::attach(ring).unwrap();
    let mut c = ring.acquire_lane(&who(1), 0).unwrap();
    for n in 0..3 {
        emit(ring, &mut c, n).unwrap();
    }
    assert_eq!(core.read(ring, 2).len(), 2);
    core.commit(ring);
    let theirs = Counters::snapshot(&ring).unwrap();
    assert_eq!(theirs, core.counters(ring));
    assert_eq!((theirs.received, theirs.in_flight), (2, 1));
    assert!(theirs.identity_holds());
}
