//! Scenario: two writers intern the same and different strings at once
//! while the consumer resolves ids, both ones it guesses and ones carried
//! by events.
//!
//! Setup: a string index of 4 entries over an 8-word arena; 4 lanes of 2
//! slots, drop-newest. Writer 1 interns "/users" then "load" and, from its
//! own lane, writes an event naming "load" with "/users" as its exception
//! type; writer 2 does the same with "/users" and "save". "/users" and
//! "load" hash to entry 1 and "save" to entry 2, so the interning also
//! races on linear probing. The consumer first resolves id 2 (entry 1,
//! where "/users" lands) without having seen it in any event, then makes
//! one pass, resolving both ids of each event it gets. After joining, a
//! final drain that resolves the rest.
//!
//! Accepted outcomes (ids are entry index + 1):
//! - `users=2 load=3 save=4`: "load" probed past "/users" into entry 2
//!   before "save" claimed it; "save" moved on to entry 3;
//! - `users=2 load=4 save=3`: "save" took entry 2 first; "load" probed on
//!   to entry 3.
//!
//! ("/users" is always interned before "load", so it always owns entry 1.)
//!
//! In both: both writers get the same id for "/users"; the three ids are
//! distinct and none is the overflow id; the consumer's early resolve of
//! id 2 gives "/users" or "not ready", never other text; every id carried
//! by an event resolves to exactly its text, both in the consumer's
//! concurrent pass and after the drain; strings_overflow stays 0; both
//! events are delivered.
//!
//! Forbidden: one text under two ids (a writer that found the key but not
//! the text of the entry), an id resolving to another text or to an
//! incomplete entry once an event carrying it is delivered.
//!
//! Orderings exercised: `publish_text`'s Release store of an entry's `loc`
//! and the Acquire loads of it in `wait_ready` (another writer) and
//! `resolve` (the consumer).
#![cfg(profilis_loom)]

use loom::sync::Arc;
use loom::thread;
use loom_tests::*;
use profilis::ring::{ConsumerCore, RingRef};
use profilis::strings::ResolveError;
use profilis::sync::Ordering::Relaxed;
use profilis::testing::OwnedRing;
use profilis::{Event, StrId};

const ACCEPTED: [&str; 2] = ["users=2 load=3 save=4", "users=2 load=4 save=3"];
const OWN: [&str; 3] = ["", "load", "save"];

/// Checks that the event's ids resolve to the texts its writer interned.
fn check_names(ring: RingRef<'_>, ev: &Event) {
    assert_eq!(ring.resolve(ev.name).as_deref(), Ok(OWN[ev.tid as usize]));
    assert_eq!(ring.resolve(ev.exception_type).as_deref(), Ok("/users"));
}

#[test]
fn interning_race_with_a_concurrent_resolver() {
    model(&ACCEPTED, || {
        let owned = Arc::new(OwnedRing::new(4, 2, false, 4, 8, 1));
        let core = ConsumerCore::attach(owned.view()).unwrap();

        let writers: Vec<_> = [1u32, 2]
            .into_iter()
            .map(|p| {
                let owned = owned.clone();
                thread::spawn(move || {
                    let ring = owned.view();
                    let users = ring.intern("/users");
                    let own = ring.intern(OWN[p as usize]);
                    let mut ev = event(p, 0);
                    ev.name = own;
                    ev.exception_type = users;
                    let mut cursor = take_lane(ring, p);
                    emit(ring, &mut cursor, &ev).expect("room");
                    (users, own)
                })
            })
            .collect();
        let consumer = {
            let owned = owned.clone();
            thread::spawn(move || {
                let mut core = core;
                let ring = owned.view();
                match ring.resolve(StrId(2)) {
                    Ok(text) => assert_eq!(text, "/users", "a guessed id resolved to other text"),
                    Err(e) => assert_eq!(e, ResolveError::NotReady),
                }
                let got = pass(&mut core, ring, usize::MAX);
                for ev in &got {
                    check_names(ring, ev);
                }
                (core, got.len())
            })
        };

        let ids: Vec<(StrId, StrId)> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        let (mut core, concurrent) = consumer.join().unwrap();
        let ring = owned.view();
        let rest = final_drain(&mut core, ring);
        assert_eq!(concurrent + rest.len(), 2);
        for ev in &rest {
            check_names(ring, ev);
        }

        let [(users1, load), (users2, save)] = ids[..] else {
            unreachable!()
        };
        assert_eq!(users1, users2, "same text, same id");
        assert!(users1 != load && users1 != save && load != save);
        for (id, text) in [(users1, "/users"), (load, "load"), (save, "save")] {
            assert_ne!(id, StrId::OVERFLOW);
            assert_eq!(ring.resolve(id).as_deref(), Ok(text));
            assert_eq!(ring.intern(text), id, "interning again finds the entry");
        }
        assert_eq!(ring.header.strings_overflow.load(Relaxed), 0);
        assert_settled(&core.counters(ring));
        format!("users={} load={} save={}", users1.0, load.0, save.0)
    });
}
