//! Loom models of the Profilis ring protocol.
//!
//! The models live in `tests/`, one scenario per file, and run the protocol
//! code that ships (`profilis::ring`, `strings`, `messages`) over loom's
//! atomics:
//!
//! ```text
//! RUSTFLAGS="--cfg profilis_loom" CARGO_TARGET_DIR=loom-target \
//!     LOOM_MAX_PREEMPTIONS=2 cargo test -p loom-tests --release
//! ```
//!
//! Without the cfg the crate and its tests compile to nothing, so
//! `cargo test --workspace` stays unaffected. This library holds the helpers
//! the scenarios share: building recognisable events, emitting them the way
//! `Ring::record` does, and draining with a [`ConsumerCore`].

#[cfg(profilis_loom)]
pub use model::*;

#[cfg(profilis_loom)]
mod model {
    use profilis::record::{Kind, Method, MsgRef, StrId};
    use profilis::ring::{ConsumerCore, Counters, RingRef};
    use profilis::Event;

    /// Explores `f` under every interleaving loom allows within the bounds
    /// from the environment (`LOOM_MAX_PREEMPTIONS`), like a jcstress test:
    /// each run asserts what must hold, then returns the name of the outcome
    /// it observed. A run whose outcome is not in `accepted` fails at once;
    /// after the exploration every accepted outcome must have been observed
    /// at least once, so a model that cannot reach an outcome (too small, or
    /// a protocol that changed) fails too.
    ///
    /// The branch limit is raised above loom's default of 1000: one emit is
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
    /// `LOOM_MAX_PREEMPTIONS` says so). For models where a thread reads a
    /// record while another writes the same slot: every Relaxed word load
    /// may then return the old or the new store, up to 2^14 outcomes per
    /// schedule, which makes two preemptions unaffordable.
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

    /// A stall timeout no model reaches: claims are never skipped.
    pub const NEVER: u64 = u64::MAX;

    /// An event that names its producer (`tid`) and its sequence number
    /// within that producer (`value`), so a model can check per-producer
    /// order and exactly-once delivery.
    pub fn event(producer: u32, n: u64) -> Event {
        Event {
            position: 0,
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

    /// What happened to one emit.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Emitted {
        /// Claimed position `pos` and committed it.
        Written(u64),
        /// The ring was full.
        Dropped,
        /// Claimed `pos`, but the consumer skipped it before the commit.
        Late(u64),
    }

    /// Claims and commits one event, as `Ring::record` does.
    pub fn emit(ring: RingRef<'_>, ev: &Event) -> Emitted {
        match ring.try_claim() {
            Ok(pos) => match ring.commit(pos, &ev.encode(pos)) {
                Ok(()) => Emitted::Written(pos),
                Err(_) => Emitted::Late(pos),
            },
            Err(_) => Emitted::Dropped,
        }
    }

    /// One consumer pass: read up to `limit` positions, then commit them.
    /// Returns the delivered events.
    pub fn pass(
        core: &mut ConsumerCore,
        ring: RingRef<'_>,
        now_ns: u64,
        limit: usize,
    ) -> Vec<Event> {
        let events = core.read(ring, now_ns, limit).to_vec();
        core.commit(ring);
        events
    }

    /// Like [`pass`], and the consumer's counters must add up both between
    /// read and commit and after the commit, whatever the writers are
    /// doing. (Each snapshot loads shared counters, which multiplies the
    /// interleavings, so only the counters model takes them.)
    pub fn checked_pass(
        core: &mut ConsumerCore,
        ring: RingRef<'_>,
        now_ns: u64,
        limit: usize,
    ) -> Vec<Event> {
        let events = core.read(ring, now_ns, limit).to_vec();
        assert_identity(&core.counters(ring));
        core.commit(ring);
        assert_identity(&core.counters(ring));
        events
    }

    /// Asserts `received + dropped + abandoned + torn + in_flight == claimed`
    /// and that the read position never passes the claim position.
    pub fn assert_identity(c: &Counters) {
        assert!(c.identity_holds(), "identity broken: {c:?}");
        assert!(c.head <= c.tail, "read position past the tail: {c:?}");
    }

    /// Drains everything that is resolvable once all threads have finished:
    /// passes until the read position stops moving.
    pub fn final_drain(core: &mut ConsumerCore, ring: RingRef<'_>, now_ns: u64) -> Vec<Event> {
        let mut out = Vec::new();
        loop {
            let before = core.state().head;
            out.extend(pass(core, ring, now_ns, usize::MAX));
            if core.state().head == before {
                return out;
            }
        }
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

    /// Asserts that `ev` is exactly what `event(producer, n)` wrote at its
    /// position: no field of another record leaked in.
    pub fn assert_intact(ev: &Event) {
        let mut expected = event(ev.tid, ev.value);
        expected.position = ev.position;
        assert_eq!(*ev, expected, "mixed record delivered");
    }

    /// Asserts the counters identity and that the ring is fully resolved.
    pub fn assert_settled(c: &Counters) {
        assert_identity(c);
        assert_eq!(c.in_flight, 0, "unresolved positions after drain: {c:?}");
        assert_eq!(c.head, c.tail, "{c:?}");
    }
}
