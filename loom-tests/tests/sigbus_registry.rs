//! Scenario: the SIGBUS handler's table of mappings. A slot is freed and
//! taken for another mapping while a handler on a third thread looks up a
//! faulting address.
//!
//! Setup: a table of one slot. Thread X registers mapping A,
//! `[0x10000, 0x14000)`, marks it hit (a fault in it, handled on X's own
//! thread, as a fault always is) and unregisters it (the mapping is
//! dropped). Thread Y registers mapping B, `[0x12000, 0x13000)` (an
//! address range inside A's, as `mmap` reuses freed ranges), once. Thread H
//! is the handler of a fault elsewhere: it looks up 0x14800, an address in
//! neither mapping. After joining, the table is searched again.
//!
//! Accepted outcomes:
//! - `B took A's slot`: Y registered after X unregistered;
//! - `B first, A refused`: Y took the slot before X, whose registration
//!   found the table full;
//! - `A held, B refused`: Y tried while A was registered.
//!
//! In all: the handler's lookup of 0x14800 finds nothing (never B's start
//! with A's length); after joining, B (when registered) is found for
//! 0x12800, nothing for 0x10800 or 0x14800, and B is not marked hit.
//!
//! Forbidden: a lookup pairing B's start with A's length, B's slot keeping
//! A's length or A's hit mark once B is registered.
//!
//! Orderings exercised: `register`'s Release store of `start` and `find`'s
//! Acquire load of it; `unregister`'s Release store of 0 and `register`'s
//! Acquire CAS that takes the slot next.
#![cfg(profilis_loom)]

use loom::sync::Arc;
use loom::thread;
use loom_tests::*;
use profilis::sigbus::Registry;

const ACCEPTED: [&str; 3] = ["B took A's slot", "B first, A refused", "A held, B refused"];

const A: (usize, usize) = (0x10000, 0x4000);
const B: (usize, usize) = (0x12000, 0x1000);

#[test]
fn a_slot_changes_mapping_while_a_handler_searches() {
    model(&ACCEPTED, || {
        let table = Arc::new(Registry::<1>::new());
        let x = {
            let table = table.clone();
            thread::spawn(move || {
                let slot = table.register(A.0, A.1)?;
                table.mark_hit(slot);
                assert!(table.is_hit(slot));
                table.unregister(slot);
                Some(slot)
            })
        };
        let y = {
            let table = table.clone();
            thread::spawn(move || table.register(B.0, B.1))
        };
        let h = {
            let table = table.clone();
            thread::spawn(move || {
                assert_eq!(table.find(0x14800), None, "B's start with A's length");
            })
        };

        let a = x.join().unwrap();
        let b = y.join().unwrap();
        h.join().unwrap();
        assert_eq!(table.find(0x10800), None, "A is gone");
        assert_eq!(table.find(0x14800), None, "B's slot holds A's length");
        match b {
            Some(slot) => {
                assert_eq!(table.find(0x12800), Some(slot));
                assert!(!table.is_hit(slot), "B's slot holds A's hit mark");
            }
            None => assert_eq!(table.find(0x12800), None),
        }
        match (a, b) {
            (Some(_), Some(_)) => "B took A's slot",
            (None, Some(_)) => "B first, A refused",
            (Some(_), None) => "A held, B refused",
            (None, None) => panic!("the slot was free for one of them"),
        }
        .to_string()
    });
}
