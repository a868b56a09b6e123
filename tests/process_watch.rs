//! The pidfd budget of `profilis::process::Watch`: a test binary of its own,
//! so that no other test's watch holds descriptors while it counts them.

use profilis::process::{pid, start_time, Watch, MAX_PIDFDS};

#[test]
fn past_the_pidfd_budget_checks_still_answer_from_proc_and_keep_nothing() {
    let own = (pid(), start_time(pid()).expect("own stat"));
    let mut full: Vec<Watch> = (0..MAX_PIDFDS).map(|_| Watch::default()).collect();
    for w in &mut full {
        assert!(w.runs(own.0, own.1));
    }
    assert_eq!(full.iter().map(Watch::len).sum::<usize>(), MAX_PIDFDS);
    let mut over = Watch::default();
    assert!(over.runs(own.0, own.1));
    assert!(
        !over.runs(own.0, own.1 + 1),
        "another start time is another process"
    );
    assert!(over.is_empty());
    // Descriptors given back (watches dropped) can be kept again, from the
    // next round on.
    drop(full);
    assert!(over.runs(own.0, own.1));
    over.end_round();
    assert!(over.runs(own.0, own.1));
    assert_eq!(over.len(), 1);
}
