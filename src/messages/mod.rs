//! Message slots: bounded storage for variable text such as exception
//! messages, which would flood the string table if interned.
//!
//! A small overwrite ring of 256-byte slots, each guarded by a sequence word
//! (seqlock). A writer takes message number `n` with `fetch_add` and the slot
//! `n % slots`, and stores the text's length and check value and only the
//! words the text fills; the event carries a [`MsgRef`] naming `n`. The consumer reads
//! the text when it reads the event; if a newer message took the slot in the
//! meantime, the reference no longer matches and the text is reported lost.
//!
//! A message with a stack trace takes a *run* of consecutive numbers
//! `n .. n + run` with one `fetch_add(run)`: the text in slot `n`, whose
//! `meta` also holds `run - 1`, and the stack in the slots after it, each
//! written and checked like a message of its own. The consumer reads the
//! whole run or reports the message lost.

mod stack;

pub use stack::{bound_stack, stack_capacity, STACK_CUT_MARK};

use crate::hash::{hash_bytes, word_le};
use crate::layout::{MsgSlot, MSG_MAX_BYTES, MSG_RUN_MAX, MSG_RUN_SHIFT};
use crate::record::MsgRef;
use crate::ring::RingRef;
use crate::strings::truncate_str;
use crate::sync::{fence, Ordering::*};

const REF_MASK: u64 = 0x7FFF_FFFF;

/// A message read back: its text and, when the writer attached one, the
/// stack trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The message text (at most 240 bytes).
    pub text: String,
    /// The stack trace, bounded by [`stack_capacity`].
    pub stack: Option<String>,
}

/// Check value stored with a message: a hash of its text mixed with its
/// message number. The number matters: a writer that lost its slot to a
/// newer message may still be storing words when the newer one completes,
/// and its text must then fail the check rather than pass as the newer
/// message's text.
fn text_check(n: u64, bytes: &[u8]) -> u64 {
    (hash_bytes(bytes) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(32)) & 0xFFFF_FFFF
}

/// Longest run a ring of `slots` message slots allows: a quarter of the
/// slots at most, so a run never laps itself and leaves room to others.
pub(crate) fn max_run(slots: usize) -> usize {
    (slots / 4).clamp(1, MSG_RUN_MAX)
}

impl<'a> RingRef<'a> {
    fn message_slot(&self, n: u64) -> &MsgSlot {
        &self.messages[(n & (self.messages.len() as u64 - 1)) as usize]
    }

    /// Stores `text` (cut to 240 bytes) and returns a reference for an event.
    /// Returns `MsgRef(0)` if a newer message took the slot first (counted).
    pub fn record_message(&self, text: &str) -> MsgRef {
        self.record_message_with_stack(text, None)
    }

    /// Stores `text` (cut to 240 bytes) and, when given, a stack trace (cut
    /// by [`bound_stack`] to what a run of slots holds, keeping its end: the
    /// innermost frames), and returns a reference for an event. Returns
    /// `MsgRef(0)` if a newer message took any slot of the run first (one
    /// loss counted).
    pub fn record_message_with_stack(&self, text: &str, stack: Option<&str>) -> MsgRef {
        let text = truncate_str(text, MSG_MAX_BYTES);
        let stack = stack.map(|s| bound_stack(s, stack_capacity(self.messages.len())));
        let stack_bytes = stack.as_deref().map_or(&[][..], str::as_bytes);
        let run = 1 + stack_bytes.len().div_ceil(MSG_MAX_BYTES);
        // ORDERING: Relaxed: only hands out distinct numbers; the text of
        // each slot is published by its `seq` (Release CAS in `store_slot`,
        // paired with the consumer's Acquire load in `read_msg_slot`).
        let n = self.header.messages_next.fetch_add(run as u64, Relaxed);
        let mut stored = self.store_slot(n, text.as_bytes(), run);
        for (i, chunk) in stack_bytes.chunks(MSG_MAX_BYTES).enumerate() {
            stored &= self.store_slot(n.wrapping_add(1 + i as u64), chunk, 1);
        }
        if !stored {
            // ORDERING: Relaxed: a statistics counter, read on its own.
            self.header.messages_lost.fetch_add(1, Relaxed);
            return MsgRef(0);
        }
        MsgRef((n & REF_MASK) as u32 + 1)
    }

    /// Writes `bytes` (at most 240) into the slot of message number `n`
    /// with the per-slot protocol; `false` if a newer message took the slot.
    fn store_slot(&self, n: u64, bytes: &[u8], run: usize) -> bool {
        let slot = self.message_slot(n);
        // Wrapping: `messages_next` lives in the file, and a damaged or
        // hostile file may hold any value there.
        let writing = n.wrapping_mul(2).wrapping_add(1);
        let mut seen = slot.seq.load(Relaxed);
        loop {
            if seen >= writing {
                return false;
            }
            // ORDERING: Acquire on success pairs with the Release CAS that
            // completed the slot's previous message: that writer's text
            // stores happen before ours, so they can never land on top of
            // our text.
            match slot
                .seq
                .compare_exchange_weak(seen, writing, Acquire, Relaxed)
            {
                Ok(_) => break,
                Err(actual) => seen = actual,
            }
        }
        // ORDERING: Release fence pairs with the consumer's Acquire fence in
        // `read_msg_slot`: a reader that sees any word below also sees
        // `writing` (odd) and rejects the read.
        fence(Release);
        let meta =
            bytes.len() as u64 | ((run as u64 - 1) << MSG_RUN_SHIFT) | text_check(n, bytes) << 32;
        slot.meta.store(meta, Relaxed);
        // Only the words the text fills: a reader reads as many as `meta`
        // says, and words past them are never looked at.
        for (word, chunk) in slot.text.iter().zip(bytes.chunks(8)) {
            word.store(word_le(chunk), Relaxed);
        }
        // ORDERING: Release pairs with the consumer's Acquire load of `seq`
        // in `read_msg_slot`: the text is visible once the slot reads complete.
        // CAS, so a newer writer that took the slot meanwhile keeps it.
        slot.seq
            .compare_exchange(writing, writing.wrapping_add(1), Release, Relaxed)
            .is_ok()
    }

    /// Reads the text a [`MsgRef`] names, or `None` if it was overwritten,
    /// never completed, or is damaged.
    pub fn read_message(&self, msg: MsgRef) -> Option<String> {
        self.read_message_with_stack(msg).map(|m| m.text)
    }

    /// Reads the message a [`MsgRef`] names with its stack trace, or `None`
    /// if any slot of its run was overwritten, never completed, or is
    /// damaged (a run longer than this ring allows included).
    pub fn read_message_with_stack(&self, msg: MsgRef) -> Option<Message> {
        if msg.0 == 0 {
            return None;
        }
        let n_low = (msg.0 - 1) as u64;
        let (n, text, run) = self.read_msg_slot(n_low, None)?;
        let text = String::from_utf8(text).ok()?;
        if run == 1 {
            return Some(Message { text, stack: None });
        }
        if run > max_run(self.messages.len()) {
            return None;
        }
        let mut stack = Vec::with_capacity((run - 1) * MSG_MAX_BYTES);
        for i in 1..run as u64 {
            let (_, chunk, 1) = self.read_msg_slot(n.wrapping_add(i), Some(n.wrapping_add(i)))?
            else {
                return None;
            };
            stack.extend_from_slice(&chunk);
        }
        let stack = String::from_utf8(stack).ok()?;
        Some(Message {
            text,
            stack: Some(stack),
        })
    }

    /// Reads one slot holding message number `n` (only its low 31 bits
    /// known when `full` is `None`): the full number, the bytes and the run
    /// length its `meta` records.
    fn read_msg_slot(&self, n_low: u64, full: Option<u64>) -> Option<(u64, Vec<u8>, usize)> {
        let slot = self.message_slot(n_low);
        // ORDERING: Acquire pairs with the writer's Release CAS completing
        // the message.
        let seq = slot.seq.load(Acquire);
        if seq == 0 || !seq.is_multiple_of(2) {
            return None;
        }
        // The completed sequence value 2n + 2 names the full message number.
        let n = seq / 2 - 1;
        let matches = match full {
            Some(full) => n == full,
            None => (n & REF_MASK) == n_low,
        };
        if !matches {
            return None;
        }
        let meta = slot.meta.load(Relaxed);
        let len = (meta & ((1 << MSG_RUN_SHIFT) - 1)) as usize;
        let run = ((meta >> MSG_RUN_SHIFT) & 0xFFFF) as usize + 1;
        if len > MSG_MAX_BYTES || run > MSG_RUN_MAX {
            return None;
        }
        let mut bytes = Vec::with_capacity(MSG_MAX_BYTES);
        for word in &slot.text[..len.div_ceil(8)] {
            bytes.extend_from_slice(&word.load(Relaxed).to_le_bytes());
        }
        // ORDERING: Acquire fence pairs with the writer's Release fence after
        // it marks the slot odd: if we read any of its words, we see the mark.
        fence(Acquire);
        if slot.seq.load(Relaxed) != seq {
            return None;
        }
        bytes.truncate(len);
        if text_check(n, &bytes) != meta >> 32 {
            return None;
        }
        Some((n, bytes, run))
    }
}

#[cfg(all(test, not(profilis_loom)))]
mod tests;
