use super::*;
use crate::layout::MSG_RUN_MAX;
use crate::testing::OwnedRing;

/// Stores `text` into message slot 0 the way the writer of message `n`
/// does, without touching the sequence word: what a writer that lost
/// the slot leaves behind when its stores land late.
fn late_words(ring: RingRef<'_>, n: u64, text: &str) {
    let slot = &ring.messages[0];
    let bytes = text.as_bytes();
    slot.meta
        .store(bytes.len() as u64 | text_check(n, bytes) << 32, Relaxed);
    for (word, chunk) in slot.text.iter().zip(bytes.chunks(8)) {
        word.store(word_le(chunk), Relaxed);
    }
}

fn stack_of(lines: usize) -> String {
    (0..lines)
        .map(|i| format!("  File \"app.py\", line {i}, in frame_{i}\n"))
        .collect()
}

#[test]
fn a_losing_writers_late_text_never_passes_as_the_winners() {
    let owned = OwnedRing::new(1, 2, false, 16, 64, 1);
    let ring = owned.view();
    // Message 0 takes the slot, message 1 takes it over and completes;
    // message 0's writer, still running, then stores its whole text.
    let n0 = ring.header.messages_next.fetch_add(1, Relaxed);
    let winner = ring.record_message("connection reset");
    assert_eq!(
        ring.read_message(winner).as_deref(),
        Some("connection reset")
    );
    late_words(ring, n0, "timeout");
    assert_eq!(ring.read_message(winner), None);
}

#[test]
fn a_stack_round_trips_through_a_run_of_slots() {
    let owned = OwnedRing::new(1, 2, false, 16, 64, 64);
    let ring = owned.view();
    let stack = stack_of(20);
    assert!(stack.len() > MSG_MAX_BYTES);
    let m = ring.record_message_with_stack("division by zero", Some(&stack));
    let back = ring.read_message_with_stack(m).unwrap();
    assert_eq!(back.text, "division by zero");
    assert_eq!(back.stack.as_deref(), Some(stack.as_str()));
    // The run took its numbers with one fetch_add: the next message
    // starts after it.
    let runs = stack.len().div_ceil(MSG_MAX_BYTES) as u64 + 1;
    assert_eq!(ring.header.messages_next.load(Relaxed), runs);
    let plain = ring.record_message("no stack");
    assert_eq!(plain.0 as u64, runs + 1);
    let plain = ring.read_message_with_stack(plain).unwrap();
    assert_eq!((plain.text.as_str(), plain.stack), ("no stack", None));
}

#[test]
fn a_long_stack_keeps_its_innermost_frames_behind_the_mark() {
    let owned = OwnedRing::new(1, 2, false, 16, 64, 256);
    let ring = owned.view();
    let header = "Traceback (most recent call last):\n";
    let stack = format!("{header}{}ValueError: bad input\n", stack_of(400));
    let m = ring.record_message_with_stack("bad input", Some(&stack));
    let back = ring.read_message_with_stack(m).unwrap().stack.unwrap();
    assert!(back.len() <= (MSG_RUN_MAX - 1) * MSG_MAX_BYTES);
    // The header line stays, then the mark, then the innermost frames.
    assert!(back.starts_with(&format!("{header}{STACK_CUT_MARK}")));
    assert!(back.ends_with("line 399, in frame_399\nValueError: bad input\n"));
    // Cut at a line boundary: every kept line is a whole frame line.
    let body = &back[header.len() + STACK_CUT_MARK.len()..];
    assert!(body.starts_with("  File \"app.py\", line "));
    assert!(stack.ends_with(body));
}

#[test]
fn a_ring_too_small_for_runs_keeps_the_message_without_its_stack() {
    let owned = OwnedRing::new(1, 2, false, 16, 64, 4);
    let ring = owned.view();
    assert_eq!(stack_capacity(4), 0);
    let m = ring.record_message_with_stack("boom", Some("frame\n"));
    let back = ring.read_message_with_stack(m).unwrap();
    assert_eq!((back.text.as_str(), back.stack), ("boom", None));
}

#[test]
fn a_run_whose_middle_slot_was_reused_reads_as_lost() {
    let owned = OwnedRing::new(1, 2, false, 16, 64, 16);
    let ring = owned.view();
    // 16 slots: runs of up to 4. Message 0 takes slots 0..4.
    let m = ring.record_message_with_stack("first", Some(&"x".repeat(600)));
    assert!(ring.read_message_with_stack(m).is_some());
    // A newer message numbered 18 takes slot 2, the middle of the run.
    ring.header.messages_next.store(18, Relaxed);
    ring.record_message("newer");
    assert_eq!(ring.read_message_with_stack(m), None);
    assert_eq!(ring.read_message(m), None);
}

#[test]
fn a_torn_run_reads_as_lost() {
    let owned = OwnedRing::new(1, 2, false, 16, 64, 16);
    let ring = owned.view();
    let m = ring.record_message_with_stack("first", Some(&"y".repeat(600)));
    // The writer of the run died while writing its last slot: odd seq.
    let last = &ring.messages[3];
    last.seq.store(2 * 3 + 1, Relaxed);
    assert_eq!(ring.read_message_with_stack(m), None);
}

#[test]
fn a_run_length_past_what_the_ring_allows_reads_as_lost() {
    let owned = OwnedRing::new(1, 2, false, 16, 64, 16);
    let ring = owned.view();
    let m = ring.record_message("first");
    // A hostile file claims a run of 16 in a ring of 16 slots (at most 4),
    // with a valid check value, and every other slot looking complete.
    let slot = &ring.messages[0];
    let meta = slot.meta.load(Relaxed);
    slot.meta.store(meta | 15 << MSG_RUN_SHIFT, Relaxed);
    for (i, s) in ring.messages.iter().enumerate().skip(1) {
        s.meta.store(text_check(i as u64, b"") << 32, Relaxed);
        s.seq.store(2 * i as u64 + 2, Relaxed);
    }
    assert_eq!(ring.read_message_with_stack(m), None);
    // A continuation slot that claims to start a run of its own.
    slot.meta.store(meta | 1 << MSG_RUN_SHIFT, Relaxed);
    ring.messages[1]
        .meta
        .store(1 << MSG_RUN_SHIFT | text_check(1, b"") << 32, Relaxed);
    assert_eq!(ring.read_message_with_stack(m), None);
    ring.messages[1]
        .meta
        .store(text_check(1, b"") << 32, Relaxed);
    let back = ring.read_message_with_stack(m).unwrap();
    assert_eq!(back.stack.as_deref(), Some(""));
}

#[test]
fn a_stack_that_is_not_utf8_after_a_cut_is_never_returned_broken() {
    let owned = OwnedRing::new(1, 2, false, 16, 64, 64);
    let ring = owned.view();
    // Multi-byte chars straddle the 240-byte chunks of the run.
    let stack = "ü".repeat(500);
    let m = ring.record_message_with_stack("é", Some(&stack));
    let back = ring.read_message_with_stack(m).unwrap();
    assert_eq!(back.stack.as_deref(), Some(stack.as_str()));
}

#[test]
fn bound_stack_cuts_at_char_boundaries_and_refuses_tiny_bounds() {
    assert_eq!(bound_stack("short", 100), "short");
    assert_eq!(bound_stack("long enough", 3), "");
    // No line break: no header kept, the cut falls on a char boundary.
    let long = "ü".repeat(100);
    let cut = bound_stack(&long, STACK_CUT_MARK.len() + 11);
    assert!(cut.starts_with(STACK_CUT_MARK));
    assert_eq!(&cut[STACK_CUT_MARK.len()..], "ü".repeat(5));
}
