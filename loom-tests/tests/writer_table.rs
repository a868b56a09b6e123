//! Scenario: two processes register in the writer table while a reader
//! lists it.
//!
//! Setup: a writer table of 2 entries. Process 1 (pid 1, start time 10,
//! service 100) and process 2 (pid 2, start time 20, service 200) each call
//! `register_writer`, then once more (a process that registered finds its
//! own entry). Meanwhile the reader calls `writer_table` once. After
//! joining, the table is listed again.
//!
//! Accepted outcomes (what the concurrent listing showed of each process:
//! `absent`, `filling` (pid stored, start time not yet), `complete`):
//! every combination of `pid1 absent|filling|complete` and
//! `pid2 absent|filling|complete`.
//!
//! In all: the two processes get different entries, and the same entry on
//! their second call; every entry the reader sees with a start time holds
//! exactly that process's service, registration time and heartbeat; after
//! joining, both entries are complete and `writers_overflow` is 0.
//!
//! Forbidden: a listed entry with a start time but another process's (or
//! no) service, registration time or heartbeat.
//!
//! Orderings exercised: the Release store of `start_time` in
//! `register_writer` and the Acquire load of it in `writer_table`.
#![cfg(profilis_loom)]

use loom::sync::Arc;
use loom::thread;
use loom_tests::*;
use profilis::ring::{Registration, WriterEntryView};
use profilis::sync::Ordering::Relaxed;
use profilis::testing::OwnedRing;

const ACCEPTED: [&str; 9] = [
    "pid1 absent, pid2 absent",
    "pid1 absent, pid2 filling",
    "pid1 absent, pid2 complete",
    "pid1 filling, pid2 absent",
    "pid1 filling, pid2 filling",
    "pid1 filling, pid2 complete",
    "pid1 complete, pid2 absent",
    "pid1 complete, pid2 filling",
    "pid1 complete, pid2 complete",
];

fn registration(pid: u32) -> Registration {
    Registration {
        pid,
        start_time: 10 * pid as u64,
        service: 100 * pid as u64,
        wall_ns: 1000 * pid as u64,
        mono_ns: 2000 * pid as u64,
    }
}

/// Asserts that a listed entry with a start time is the one its process
/// registered; returns how far it is filled in.
fn check(entry: &WriterEntryView) -> &'static str {
    assert!(entry.pid == 1 || entry.pid == 2, "{entry:?}");
    if entry.start_time == 0 {
        return "filling";
    }
    let r = registration(entry.pid);
    assert_eq!(
        (
            entry.start_time,
            entry.service,
            entry.registered_wall_ns,
            entry.heartbeat_ns
        ),
        (r.start_time, r.service, r.wall_ns, r.mono_ns),
        "an entry with a start time is complete"
    );
    "complete"
}

fn state(table: &[WriterEntryView], pid: u32) -> &'static str {
    table.iter().find(|e| e.pid == pid).map_or("absent", check)
}

#[test]
fn two_processes_register_while_the_table_is_listed() {
    model(&ACCEPTED, || {
        let owned = Arc::new(OwnedRing::events_only(1, 2, false));
        let processes: Vec<_> = [1u32, 2]
            .into_iter()
            .map(|pid| {
                let owned = owned.clone();
                thread::spawn(move || {
                    let ring = owned.view();
                    let first = ring.register_writer(&registration(pid)).expect("room");
                    let again = ring.register_writer(&registration(pid));
                    assert_eq!(again, Some(first), "a process finds its own entry");
                    first
                })
            })
            .collect();
        let reader = {
            let owned = owned.clone();
            thread::spawn(move || {
                let table = owned.view().writer_table();
                table.iter().for_each(|e| {
                    check(e);
                });
                format!("pid1 {}, pid2 {}", state(&table, 1), state(&table, 2))
            })
        };

        let indices: Vec<u16> = processes.into_iter().map(|p| p.join().unwrap()).collect();
        assert_ne!(indices[0], indices[1], "two processes in one entry");
        let seen = reader.join().unwrap();
        let ring = owned.view();
        let table = ring.writer_table();
        assert_eq!(table.len(), 2);
        assert_eq!(
            (state(&table, 1), state(&table, 2)),
            ("complete", "complete")
        );
        assert_eq!(ring.header.writers_overflow.load(Relaxed), 0);
        seen
    });
}
