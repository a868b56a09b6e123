//! Message slots: bounded storage for variable text such as exception
//! messages, which would flood the string table if interned.
//!
//! A small overwrite ring of 256-byte slots, each guarded by a sequence word
//! (seqlock). A writer takes message number `n` with `fetch_add` and the slot
//! `n % slots`, and stores the text's length and check value and only the
//! words the text fills; the event carries a [`MsgRef`] naming `n`. The consumer reads
//! the text when it reads the event; if a newer message took the slot in the
//! meantime, the reference no longer matches and the text is reported lost.

use crate::hash::{hash_bytes, word_le};
use crate::layout::MSG_MAX_BYTES;
use crate::record::MsgRef;
use crate::ring::RingRef;
use crate::strings::truncate_str;
use crate::sync::{fence, Ordering::*};

const REF_MASK: u64 = 0x7FFF_FFFF;

/// Check value stored with a message: a hash of its text mixed with its
/// message number. The number matters: a writer that lost its slot to a
/// newer message may still be storing words when the newer one completes,
/// and its text must then fail the check rather than pass as the newer
/// message's text.
fn text_check(n: u64, bytes: &[u8]) -> u64 {
    (hash_bytes(bytes) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(32)) & 0xFFFF_FFFF
}

impl<'a> RingRef<'a> {
    /// Stores `text` (cut to 240 bytes) and returns a reference for an event.
    /// Returns `MsgRef(0)` if a newer message took the slot first (counted).
    pub fn record_message(&self, text: &str) -> MsgRef {
        let text = truncate_str(text, MSG_MAX_BYTES);
        let n = self.header.messages_next.fetch_add(1, Relaxed);
        let slot = &self.messages[(n & (self.messages.len() as u64 - 1)) as usize];
        // Wrapping: `messages_next` lives in the file, and a damaged or
        // hostile file may hold any value there.
        let writing = n.wrapping_mul(2).wrapping_add(1);
        let mut seen = slot.seq.load(Relaxed);
        loop {
            if seen >= writing {
                self.header.messages_lost.fetch_add(1, Relaxed);
                return MsgRef(0);
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
        // `read_message`: a reader that sees any word below also sees
        // `writing` (odd) and rejects the read.
        fence(Release);
        let bytes = text.as_bytes();
        slot.meta
            .store(bytes.len() as u64 | text_check(n, bytes) << 32, Relaxed);
        // Only the words the text fills: a reader reads as many as `meta`
        // says, and words past them are never looked at.
        for (word, chunk) in slot.text.iter().zip(bytes.chunks(8)) {
            word.store(word_le(chunk), Relaxed);
        }
        // ORDERING: Release pairs with the consumer's Acquire load of `seq`:
        // the text is visible once the slot reads complete. CAS, so a newer
        // writer that took the slot meanwhile keeps it.
        if slot
            .seq
            .compare_exchange(writing, writing.wrapping_add(1), Release, Relaxed)
            .is_err()
        {
            self.header.messages_lost.fetch_add(1, Relaxed);
            return MsgRef(0);
        }
        MsgRef((n & REF_MASK) as u32 + 1)
    }

    /// Reads the text a [`MsgRef`] names, or `None` if it was overwritten,
    /// never completed, or is damaged.
    pub fn read_message(&self, msg: MsgRef) -> Option<String> {
        if msg.0 == 0 {
            return None;
        }
        let n_low = (msg.0 - 1) as u64;
        let slot = self
            .messages
            .get((n_low & (self.messages.len() as u64 - 1)) as usize)?;
        // ORDERING: Acquire pairs with the writer's Release CAS completing
        // the message.
        let seq = slot.seq.load(Acquire);
        if seq == 0 || seq % 2 != 0 || ((seq / 2 - 1) & REF_MASK) != n_low {
            return None;
        }
        let meta = slot.meta.load(Relaxed);
        let len = (meta & 0xFFFF_FFFF) as usize;
        if len > MSG_MAX_BYTES {
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
        // The completed sequence value 2n + 2 names the full message number.
        if text_check(seq / 2 - 1, &bytes) != meta >> 32 {
            return None;
        }
        String::from_utf8(bytes).ok()
    }
}

#[cfg(all(test, not(profilis_loom)))]
mod tests {
    use super::*;
    use crate::testing::OwnedRing;

    /// Stores `text` into message slot 0 the way the writer of message `n`
    /// does, without touching the sequence word: what a writer that lost
    /// the slot leaves behind when its stores land late.
    fn late_words(ring: RingRef<'_>, n: u64, text: &str) {
        let slot = &ring.messages[0];
        let bytes = text.as_bytes();
        slot.meta
            .store(bytes.len() as u64 | text_check(n, bytes) << 32, Relaxed);
        // Only the words the text fills: a reader reads as many as `meta`
        // says, and words past them are never looked at.
        for (word, chunk) in slot.text.iter().zip(bytes.chunks(8)) {
            word.store(word_le(chunk), Relaxed);
        }
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
}
