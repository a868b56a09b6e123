//! Scenario: a writer dies mid-event; the consumer takes its lane back and
//! another writer continues in it.
//!
//! Setup: 2 lanes of 4 slots (one own lane), drop-newest. Writer 1 (pid 1)
//! holds the own lane (taken before the threads start), writes (1,0), then
//! begins (1,1) and dies: in `dies_after_begin` right after `begin` (the
//! slot says WRITING), in `dies_after_fill` after `fill` (the record is
//! complete and the slot says COMMITTED, but the tail never moved past
//! it). Its last act is to raise a `dead` flag with a Release store; the
//! consumer's liveness check loads it with Acquire. That is the ordering a
//! real death gives: the kernel makes a process's disappearance observable
//! only after its threads have stopped, so everything the writer stored is
//! visible to whoever sees it gone (see "Dead writers" in
//! docs/verification.md for why the protocol needs that and cannot do
//! without it). Concurrently, the consumer makes a pass, calls
//! `reclaim_dead` once and makes another pass, while writer 2 (pid 2)
//! tries once to take the own lane and, if it gets it, writes (2,0). After
//! joining, whatever did not happen concurrently happens in order (the
//! reclaim, writer 2's event), then a final drain.
//!
//! Accepted outcomes (delivery order; `concurrent` when writer 2 took the
//! lane back from the consumer's reclaim while the threads ran, `after`
//! when it found the lane still held):
//! - `dies_after_begin`: `(1,0) (2,0), (1,1) abandoned; concurrent` and
//!   `...; after`;
//! - `dies_after_fill`: `(1,0) (1,1) (2,0); concurrent` and `...; after`.
//!
//! In all: (1,1) is delivered whole (complete record) or counted abandoned
//! (begun only), never both and never torn; writer 2's event lands at lane
//! position 2, after the position writer 1 died in; every event is
//! delivered once; counters after the drain: claimed 3, received +
//! abandoned 3, torn 0, in_flight 0.
//!
//! Forbidden: writer 2 starting at the position writer 1 died in (its event
//! lost or counted abandoned), a record delivered mixed or twice.
//!
//! Orderings exercised: `reclaim`'s Release store of `owner` and writer 2's
//! Acquire CAS in `try_take` (the tail `reclaim` moved past the dead
//! writer's position is the one writer 2 starts from); the writer's
//! Release store of `tail` in `publish` and the consumer's Acquire load of
//! it (record (1,0) is complete when read).
//!
//! With `PROFILIS_LOOM_DEATH=relaxed` in the environment, the death signal
//! orders nothing, and the model fails whatever the orderings of the loads
//! in `reclaim`: they may see neither the WRITING mark nor the complete
//! record (nothing the writer stored after its last Release orders them),
//! so the lane is freed at the dead writer's position and writer 2 writes
//! there, where the dead writer's late stores can still land.
#![cfg(profilis_loom)]

use loom::sync::atomic::AtomicBool;
use loom::sync::Arc;
use loom::thread;
use loom_tests::*;
use profilis::ring::{ConsumerCore, Owner};
use profilis::sync::Ordering::{self, Acquire, Relaxed, Release};
use profilis::testing::OwnedRing;

/// `PROFILIS_LOOM_DEATH=relaxed` makes the death signal Relaxed: a death
/// that orders nothing. The model then fails (a position the dead writer
/// began is rewritten by writer 2 and its record lost), which is why the
/// protocol relies on the kernel's ordering of a death (docs/verification.md,
/// "Dead writers").
fn relaxed_death() -> bool {
    std::env::var("PROFILIS_LOOM_DEATH").is_ok_and(|v| v == "relaxed")
}

fn death_release() -> Ordering {
    if relaxed_death() {
        Relaxed
    } else {
        Release
    }
}

fn death_acquire() -> Ordering {
    if relaxed_death() {
        Relaxed
    } else {
        Acquire
    }
}

fn process(pid: u32) -> Owner {
    Owner {
        pid,
        tid: pid,
        start_time: 10 * pid as u64,
        writer: 0,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DiesAfter {
    Begin,
    Fill,
}

fn scenario(dies_after: DiesAfter, accepted: &'static [&'static str]) {
    model(accepted, move || {
        let owned = Arc::new(OwnedRing::events_only(2, 4, false));
        let dead = Arc::new(AtomicBool::new(false));
        let mut core = ConsumerCore::attach(owned.view()).unwrap();
        let mut cursor = owned.view().acquire_lane(&process(1), 0).unwrap();

        let doomed = {
            let (owned, dead) = (owned.clone(), dead.clone());
            thread::spawn(move || {
                let ring = owned.view();
                emit(ring, &mut cursor, &event(1, 0)).unwrap();
                let w = ring.begin(&mut cursor).unwrap();
                if dies_after == DiesAfter::Fill {
                    ring.fill(&w, &event(1, 1).encode(w.pos));
                }
                // ORDERING: Release, as the kernel orders a process's
                // stores before its death is observable.
                dead.store(true, death_release());
            })
        };
        let liveness = {
            let dead = dead.clone();
            move |pid: u32, start: u64| {
                let known = start == 0 || start == 10 * pid as u64;
                // ORDERING: Acquire pairs with the dying writer's Release.
                known && (pid == 2 || (pid == 1 && !dead.load(death_acquire())))
            }
        };
        let next = {
            let owned = owned.clone();
            thread::spawn(move || {
                let ring = owned.view();
                let mut cursor = ring.acquire_lane(&process(2), 0)?;
                let w = emit(ring, &mut cursor, &event(2, 0)).expect("room");
                ring.release_lane(&cursor, &process(2));
                Some(w.pos)
            })
        };
        let consumer = {
            let owned = owned.clone();
            let mut liveness = liveness.clone();
            thread::spawn(move || {
                let ring = owned.view();
                let mut got = pass(&mut core, ring, usize::MAX);
                let freed = core.reclaim_dead(ring, &mut liveness);
                got.extend(pass(&mut core, ring, usize::MAX));
                (core, got, freed)
            })
        };

        doomed.join().unwrap();
        let concurrent = next.join().unwrap();
        let (mut core, mut got, freed) = consumer.join().unwrap();
        let ring = owned.view();
        let mut liveness = liveness;
        assert_eq!(
            freed + core.reclaim_dead(ring, &mut liveness),
            1,
            "the dead writer's lane is taken back once"
        );
        let pos = concurrent.unwrap_or_else(|| {
            let mut cursor = ring.acquire_lane(&process(2), 0).expect("lane freed");
            let w = emit(ring, &mut cursor, &event(2, 0)).expect("room");
            ring.release_lane(&cursor, &process(2));
            w.pos
        });
        assert_eq!(
            pos, 2,
            "writer 2 continues after the dead writer's position"
        );
        got.extend(final_drain(&mut core, ring));

        assert_once_in_order(&got);
        let c = core.counters(ring);
        assert_settled(&c);
        assert_eq!(c.torn, 0, "{c:?}");
        assert_eq!((c.claimed, c.received + c.abandoned), (3, 3), "{c:?}");
        let delivered_dead = ids(&got).contains(&(1, 1));
        assert_eq!(
            delivered_dead,
            c.abandoned == 0,
            "delivered or abandoned, not both"
        );
        let when = if concurrent.is_some() {
            "concurrent"
        } else {
            "after"
        };
        if delivered_dead {
            format!("{}; {when}", label(&got))
        } else {
            format!("{}, (1,1) abandoned; {when}", label(&got))
        }
    });
}

#[test]
fn dies_after_begin() {
    scenario(
        DiesAfter::Begin,
        &[
            "(1,0) (2,0), (1,1) abandoned; concurrent",
            "(1,0) (2,0), (1,1) abandoned; after",
        ],
    );
}

#[test]
fn dies_after_fill() {
    scenario(
        DiesAfter::Fill,
        &["(1,0) (1,1) (2,0); concurrent", "(1,0) (1,1) (2,0); after"],
    );
}
