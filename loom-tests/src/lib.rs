//! Loom models of the Profilis ring protocol.
//!
//! The models live in `tests/`, one scenario per file, and run the protocol
//! code that ships (`profilis::ring`, `strings`, `messages`, the
//! `sigbus` registry) over loom's atomics:
//!
//! ```text
//! RUSTFLAGS="--cfg profilis_loom" CARGO_TARGET_DIR=loom-target \
//!     LOOM_MAX_PREEMPTIONS=2 cargo test -p loom-tests --release
//! ```
//!
//! Without the cfg the crate and its tests compile to nothing, so
//! `cargo test --workspace` stays unaffected. This library holds the helpers
//! the scenarios share: building recognisable events, writing them the way
//! the writer's emit path does, and reading with a [`ConsumerCore`].

#[cfg(profilis_loom)]
pub use model::*;

#[cfg(profilis_loom)]
mod model {
    use profilis::record::{Kind, Method, MsgRef, StrId};
    use profilis::ring::{
        ConsumerCore, ConsumerState, Counters, Full, LaneCursor, Owner, RingRef, Written,
    };
    use profilis::sync::Ordering::Relaxed;
    use profilis::Event;

    /// Explores `f` under every interleaving loom allows within the bounds
    /// from the environment (`LOOM_MAX_PREEMPTIONS`), like a jcstress test:
    /// each run asserts what must hold, then returns the name of the outcome
    /// it observed. A run whose outcome is not in `accepted` fails at once;
    /// after the exploration every accepted outcome must have been observed
    /// at least once, so a model that cannot reach an outcome (too small, or
    /// a protocol that changed) fails too.
    ///
    /// The branch limit is raised above loom's default of 1000: one event is
    /// ~18 atomic operations and one consumer pass several dozen. Prints the
    /// number of interleavings and the outcome histogram (visible with
    /// `--nocapture`).
    pub fn model<F>(accepted: &'static [&'static str], f: F)
    where
        F: Fn() -> String + Sync + Send + 'static,
    {
        check(loom::model::Builder::new(), accepted, f)
    }

    /// Like [`model`], with at most `max_preemptions` preemptions (fewer if
    /// `LOOM_MAX_PREEMPTIONS` says so). For models where a thread reads
    /// words while another stores the same words: every Relaxed load may
    /// then return the old or the new store, up to 2^14 outcomes per
    /// schedule for a record, which makes two preemptions unaffordable.
    pub fn model_bounded<F>(max_preemptions: usize, accepted: &'static [&'static str], f: F)
    where
        F: Fn() -> String + Sync + Send + 'static,
    {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(
            builder
                .preemption_bound
                .map_or(max_preemptions, |b| b.min(max_preemptions)),
        );
        check(builder, accepted, f)
    }

    fn check<F>(mut builder: loom::model::Builder, accepted: &'static [&'static str], f: F)
    where
        F: Fn() -> String + Sync + Send + 'static,
    {
        use std::collections::BTreeMap;
        use std::sync::{Arc, Mutex};

        if std::env::var_os("LOOM_MAX_BRANCHES").is_none() {
            builder.max_branches = 20_000;
        }
        let seen: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
        let record = seen.clone();
        let start = std::time::Instant::now();
        builder.check(move || {
            let outcome = f();
            assert!(
                accepted.contains(&outcome.as_str()),
                "outcome {outcome:?} is not one of the accepted {accepted:?}"
            );
            *record.lock().unwrap().entry(outcome).or_default() += 1;
        });
        let seen = seen.lock().unwrap();
        let runs: u64 = seen.values().sum();
        eprintln!("loom: {runs} interleavings in {:.1?}", start.elapsed());
        for (outcome, n) in seen.iter() {
            eprintln!("  {n:>9}  {outcome}");
        }
        let missing: Vec<_> = accepted
            .iter()
            .filter(|a| !seen.contains_key(**a))
            .collect();
        assert!(
            missing.is_empty(),
            "accepted outcomes never observed: {missing:?}"
        );
    }

    /// The identity a model's writer thread `tid` holds lanes under (all
    /// threads of one process, pid 7).
    pub fn who(tid: u32) -> Owner {
        Owner {
            pid: 7,
            tid,
            start_time: 70,
            writer: 0,
        }
    }

    /// An event that names its producer (`tid`) and its sequence number
    /// within that producer (`value`), so a model can check per-producer
    /// order and exactly-once delivery.
    pub fn event(producer: u32, n: u64) -> Event {
        Event {
            position: 0,
            lane: 0,
            kind: Kind::Fn,
            flags: 0,
            method: Method::None,
            status: 0,
            name: StrId(1),
            exception_type: StrId::NONE,
            message: MsgRef(0),
            pid: 7,
            tid: producer,
            ts_mono_ns: 1_000 + n,
            dur_ns: 10 * n + 1,
            trace_id: (producer as u128) << 64 | n as u128,
            span_id: n + 1,
            parent_span_id: 0,
            value: n,
            value2: producer as u64,
            writer: 0,
        }
    }

    /// Writes one whole event at the cursor, as the emit path does.
    pub fn emit(ring: RingRef<'_>, cursor: &mut LaneCursor, ev: &Event) -> Result<Written, Full> {
        ring.write(cursor, |pos| ev.encode(pos))
    }

    /// Loom-tracked stand-ins for a ring's event slots, for models where a
    /// writer reuses slots the consumer has read (drop-newest).
    ///
    /// The consumer marks a read access to the slot of every event it got
    /// (between `read` and `commit`); the writer marks a write access to
    /// the slot of each position right after `begin` gave it that position,
    /// before its first store into the slot. Loom checks that every write
    /// access happens after every earlier access of the same cell and fails
    /// the model otherwise. So the model checks, with loom's causality
    /// tracking rather than with values, that the consumer's reads of a slot
    /// happen before the writer's reuse of it: the property the `head`
    /// Release/Acquire pairs protect, whose failure (a load reading a store
    /// that comes later in the other thread) loom cannot produce as a value.
    pub struct SlotClaims {
        cells: Vec<loom::cell::UnsafeCell<()>>,
        lanes: u64,
        lane_slots: u64,
    }

    // SAFETY: the cells hold no data, and every access goes through loom's
    // `with` / `with_mut`, which check causality and fail the model on an
    // access that is not ordered with an earlier conflicting one.
    unsafe impl Sync for SlotClaims {}
    // SAFETY: as above.
    unsafe impl Send for SlotClaims {}

    impl SlotClaims {
        /// One cell per slot of `ring`.
        pub fn new(ring: RingRef<'_>) -> SlotClaims {
            SlotClaims {
                cells: (0..ring.capacity())
                    .map(|_| loom::cell::UnsafeCell::new(()))
                    .collect(),
                lanes: ring.lanes.len() as u64,
                lane_slots: ring.lane_slots(),
            }
        }

        fn cell(&self, lane: u64, pos: u64) -> &loom::cell::UnsafeCell<()> {
            &self.cells[(lane * self.lane_slots + pos % self.lane_slots) as usize]
        }

        /// The consumer read the slots of `events`.
        pub fn read(&self, events: &[Event]) {
            for e in events {
                let pos = e.position / self.lanes;
                self.cell(e.lane as u64, pos).with(|_| ());
            }
        }

        /// The writer of `lane` is about to store position `pos`.
        pub fn write(&self, lane: u32, pos: u64) {
            self.cell(lane as u64, pos).with_mut(|_| ());
        }
    }

    /// [`emit`], marking the slot's write access in `claims` between
    /// `begin` and the record stores.
    pub fn emit_tracked(
        ring: RingRef<'_>,
        claims: &SlotClaims,
        cursor: &mut LaneCursor,
        ev: &Event,
    ) -> Result<Written, Full> {
        let begun = ring.begin(cursor)?;
        claims.write(cursor.lane, begun.pos);
        ring.finish(cursor, &begun, &ev.encode(begun.pos));
        Ok(Written {
            pos: begun.pos,
            overwrote: begun.overwrote,
        })
    }

    /// [`pass`], marking the read accesses of the events in `claims`
    /// between `read` and `commit`.
    pub fn pass_tracked(
        core: &mut ConsumerCore,
        ring: RingRef<'_>,
        claims: &SlotClaims,
        limit: usize,
    ) -> Vec<Event> {
        let events = core.read(ring, limit).to_vec();
        claims.read(&events);
        core.commit(ring);
        events
    }

    /// Takes an own lane for `tid`, yielding while every one is held.
    pub fn take_lane(ring: RingRef<'_>, tid: u32) -> LaneCursor {
        loop {
            if let Some(cursor) = ring.acquire_lane(&who(tid), 0) {
                return cursor;
            }
            loom::thread::yield_now();
        }
    }

    /// Locks a shared lane for `tid`, yielding while every one is locked.
    pub fn lock_shared(ring: RingRef<'_>, tid: u32) -> LaneCursor {
        loop {
            if let Some(cursor) = ring.lock_shared_lane(&who(tid), 0) {
                return cursor;
            }
            loom::thread::yield_now();
        }
    }

    /// One consumer pass: read up to `limit` positions, then commit them.
    /// Returns the delivered events.
    pub fn pass(core: &mut ConsumerCore, ring: RingRef<'_>, limit: usize) -> Vec<Event> {
        let events = core.read(ring, limit).to_vec();
        core.commit(ring);
        events
    }

    /// Drains everything that is resolvable once all threads have finished:
    /// passes until no read position moves.
    pub fn final_drain(core: &mut ConsumerCore, ring: RingRef<'_>) -> Vec<Event> {
        let mut out = Vec::new();
        loop {
            let before = core.state().heads.clone();
            out.extend(pass(core, ring, usize::MAX));
            if core.state().heads == before {
                return out;
            }
        }
    }

    /// Asserts `received + dropped + abandoned + torn + in_flight == claimed`
    /// and that the read position never passes the tail.
    pub fn assert_identity(c: &Counters) {
        assert!(c.identity_holds(), "identity broken: {c:?}");
        assert!(c.head <= c.tail, "read position past the tail: {c:?}");
    }

    /// Asserts the counters identity and that every position is resolved.
    pub fn assert_settled(c: &Counters) {
        assert_identity(c);
        assert_eq!(c.in_flight, 0, "unresolved positions after drain: {c:?}");
        assert_eq!(c.head, c.tail, "{c:?}");
    }

    /// A snapshot taken by the writer of `lane` right after its event was
    /// accepted, on a drop-newest ring: besides the identity, the lane
    /// holds no more unread events than it has slots. A writer that saw
    /// the consumer hand back slots (its `head`) without also seeing the
    /// state the consumer published before that would count the reused
    /// slots twice.
    pub fn assert_writer_snapshot(ring: RingRef<'_>, lane: usize) {
        let (_, state) = ConsumerState::load(&ring).expect("the state settles");
        assert_identity(&Counters::from_state(&ring, &state));
        let tail = ring.lanes[lane].tail.load(Relaxed);
        assert!(
            tail.saturating_sub(state.heads[lane]) <= ring.lane_slots(),
            "more events in flight than the lane has slots: tail {tail}, state {state:?}"
        );
    }

    /// A message text of two words.
    pub const FIRST_TEXT: &str = "connection reset";
    /// A text of the same length and second word as [`FIRST_TEXT`] whose
    /// hash has the same low 32 bits (found by a search over the first
    /// word): the messages' text check cannot tell the two apart, so a model
    /// that mixes their words up is caught only by the protocol itself.
    pub const SECOND_TEXT: &str = "etbetugaon reset";

    /// Asserts that `a` and `b` pass each other's text check: same length,
    /// same second word, same low 32 bits of the hash.
    pub fn assert_same_check(a: &str, b: &str) {
        use profilis::hash::hash_bytes;
        assert_eq!(a.len(), b.len());
        assert_eq!(a.as_bytes()[8..], b.as_bytes()[8..]);
        assert_eq!(
            hash_bytes(a.as_bytes()) as u32,
            hash_bytes(b.as_bytes()) as u32,
            "the texts no longer share a check hash"
        );
    }

    /// `(producer, n)` of each event, in delivery order.
    pub fn ids(events: &[Event]) -> Vec<(u32, u64)> {
        events.iter().map(|e| (e.tid, e.value)).collect()
    }

    /// The delivery order as an outcome name: `(1,0) (2,0) (1,1)`.
    pub fn label(events: &[Event]) -> String {
        let parts: Vec<String> = events
            .iter()
            .map(|e| format!("({},{})", e.tid, e.value))
            .collect();
        parts.join(" ")
    }

    /// Asserts that `ev` is exactly what `event(producer, n)` wrote: no
    /// field of another record leaked in.
    pub fn assert_intact(ev: &Event) {
        let mut expected = event(ev.tid, ev.value);
        expected.position = ev.position;
        expected.lane = ev.lane;
        assert_eq!(*ev, expected, "mixed record delivered");
    }

    /// Asserts that every event is intact and delivered once, and that
    /// each producer's events arrive in the order it wrote them.
    pub fn assert_once_in_order(events: &[Event]) {
        events.iter().for_each(assert_intact);
        let mut positions: Vec<(u16, u64)> = events.iter().map(|e| (e.lane, e.position)).collect();
        positions.sort();
        positions.dedup();
        assert_eq!(positions.len(), events.len(), "a position delivered twice");
        let mut producers: Vec<u32> = events.iter().map(|e| e.tid).collect();
        producers.sort();
        producers.dedup();
        for p in producers {
            let ns: Vec<u64> = events
                .iter()
                .filter(|e| e.tid == p)
                .map(|e| e.value)
                .collect();
            assert!(
                ns.windows(2).all(|w| w[0] < w[1]),
                "producer {p} out of order or duplicated: {ns:?}"
            );
        }
    }
}
