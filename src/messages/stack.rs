//! The bound on a stack trace: what a run of message slots holds, keeping
//! the end of the text (the innermost frames, in the "most recent call
//! last" order Profilis stores stacks in) behind a marker line.

use super::max_run;
use crate::layout::MSG_MAX_BYTES;
use std::borrow::Cow;

/// First line of a stack trace cut to its bound; the frames after it are
/// the innermost ones.
pub const STACK_CUT_MARK: &str = "[outer frames cut]\n";

/// Most bytes of stack trace a message can carry in a ring of `slots`
/// message slots: the slots of the longest run but its first.
pub fn stack_capacity(slots: usize) -> usize {
    (max_run(slots) - 1) * MSG_MAX_BYTES
}

/// `stack` cut to `max` bytes: whole if it fits, else its first line (a
/// header such as `Traceback (most recent call last):`, when it takes at
/// most a quarter of `max`), [`STACK_CUT_MARK`], then its end from the
/// first line boundary (or else the first char boundary) that fits. Empty
/// when `max` cannot hold the mark.
pub fn bound_stack(stack: &str, max: usize) -> Cow<'_, str> {
    if stack.len() <= max {
        return Cow::Borrowed(stack);
    }
    let head = match stack.find('\n') {
        Some(i) if i < max / 4 => &stack[..=i],
        _ => "",
    };
    let Some(room) = max.checked_sub(head.len() + STACK_CUT_MARK.len()) else {
        return Cow::Borrowed("");
    };
    let mut start = stack.len() - room;
    while !stack.is_char_boundary(start) {
        start += 1;
    }
    let tail = &stack[start..];
    // Start at a frame line when one begins in the kept part.
    let tail = match tail.find('\n') {
        Some(i) if i + 1 < tail.len() => &tail[i + 1..],
        _ => tail,
    };
    Cow::Owned(format!("{head}{STACK_CUT_MARK}{tail}"))
}
