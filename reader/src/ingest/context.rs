//! Per-ring state shared by the statistics and the exporters while a batch
//! is processed: the ring's identity, caches of resolved names (as text and
//! as ready-escaped JSON), the writer table's service names, and the
//! exception messages of the current batch.
//!
//! String ids are small indexes into the ring's string table and never change
//! meaning once complete, so the caches are plain vectors indexed by id.

use crate::support::json;
use profilis::layout::NO_WRITER;
use profilis::{Event, MsgRef, Names, StrId, WriterInfo};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Placeholder text of a string that is still being interned: resolved
/// again next time instead of cached.
const NOT_READY: &str = "<incomplete>";

#[derive(Clone)]
struct CachedName {
    text: Arc<str>,
    json: Box<[u8]>,
}

impl CachedName {
    fn new(text: Arc<str>) -> CachedName {
        CachedName {
            json: json::quoted(&text),
            text,
        }
    }
}

#[derive(Clone, Default)]
struct WriterSlot {
    known: bool,
    start_time: u64,
    service: Option<Arc<str>>,
    service_json: Option<Box<[u8]>>,
}

/// State of one attached ring for the consumers of its batches.
pub struct RingContext {
    /// Stable id of this attachment (unique within the reader's run).
    pub slot: u32,
    /// Path of the ring file.
    pub path: PathBuf,
    /// Random identity of the ring file.
    pub ring_id: u64,
    /// `ring_id` as a JSON string literal (`"0123456789abcdef"`).
    pub ring_id_json: Box<[u8]>,
    /// Lanes of the ring (event positions grow per lane).
    pub lanes: u64,
    names: Vec<Option<CachedName>>,
    max_cached_id: usize,
    scratch: Option<CachedName>,
    writers: Vec<WriterSlot>,
    writers_checked: Option<Instant>,
    messages: HashMap<u32, Option<ReadMessage>>,
}

/// A message of the current batch: its text and stack trace.
#[derive(Clone)]
struct ReadMessage {
    text: Arc<str>,
    stack: Option<Arc<str>>,
}

impl RingContext {
    /// Context for a ring at `path` with identity `ring_id` and a string
    /// table of `string_entries` entries (ids are 1..=entries).
    pub fn new(slot: u32, path: &Path, ring_id: u64, string_entries: u64) -> RingContext {
        let mut id_json = Vec::with_capacity(18);
        json::push_hex64(&mut id_json, ring_id);
        RingContext {
            slot,
            path: path.to_owned(),
            ring_id,
            ring_id_json: id_json.into_boxed_slice(),
            lanes: 1,
            names: Vec::new(),
            max_cached_id: string_entries.min(1 << 20) as usize + 1,
            scratch: None,
            writers: Vec::new(),
            writers_checked: None,
            messages: HashMap::new(),
        }
    }

    /// Whether a name's text is final: not the placeholder of a string
    /// that is still being interned (resolved again next time instead).
    pub fn is_final(text: &str) -> bool {
        text != NOT_READY
    }

    fn cached(&mut self, names: &Names, id: StrId) -> &CachedName {
        let index = id.0 as usize;
        if index < self.max_cached_id {
            if index >= self.names.len() {
                self.names.resize(index + 1, None);
            }
            if self.names[index].is_none() {
                let entry = CachedName::new(names.name(id));
                if &*entry.text == NOT_READY {
                    // Not final yet: answer without caching it.
                    return self.scratch.insert(entry);
                }
                self.names[index] = Some(entry);
            }
            return self.names[index].as_ref().expect("filled above");
        }
        // Ids beyond the string table: the overflow marker, or nonsense.
        self.scratch.insert(CachedName::new(names.name(id)))
    }

    /// Text of a name id.
    pub fn name_text(&mut self, names: &Names, id: StrId) -> Arc<str> {
        self.cached(names, id).text.clone()
    }

    /// A name id as a JSON string literal.
    pub fn name_json(&mut self, names: &Names, id: StrId) -> &[u8] {
        &self.cached(names, id).json
    }

    /// Whether the writer-table entry an event names is known (or the
    /// event names none).
    pub fn writer_known(&self, writer: u16) -> bool {
        writer == NO_WRITER
            || self
                .writers
                .get(writer as usize)
                .is_some_and(|slot| slot.known)
    }

    /// Whether a refresh of the writer table is due for `event`: its writer
    /// is unknown, and no refresh in the last 100 ms left a writer unknown.
    pub fn needs_writer_refresh(&self, event: &Event, now: Instant) -> bool {
        !self.writer_known(event.writer)
            && self
                .writers_checked
                .is_none_or(|t| now.duration_since(t).as_millis() >= 100)
    }

    /// Takes in a fresh copy of the writer table, read because of an event
    /// from writer `wanted` (if any).
    pub fn refresh_writers(&mut self, table: &[WriterInfo], wanted: Option<u16>, now: Instant) {
        for w in table {
            let i = w.index as usize;
            if i >= self.writers.len() {
                self.writers.resize(i + 1, WriterSlot::default());
            }
            if w.start_time == 0 {
                continue; // still registering
            }
            self.writers[i] = WriterSlot {
                known: true,
                start_time: w.start_time,
                service_json: w.service.as_deref().map(json::quoted),
                service: w.service.clone(),
            };
        }
        // Still unknown (a writer killed while registering, or a bogus
        // index): do not read the table again for every batch.
        self.writers_checked = wanted.filter(|&w| !self.writer_known(w)).map(|_| now);
    }

    /// Service name of the writer of an event, as a JSON string literal.
    pub fn service_json(&self, writer: u16) -> Option<&[u8]> {
        self.writers
            .get(writer as usize)
            .and_then(|w| w.service_json.as_deref())
    }

    /// Service name of the writer of an event.
    pub fn service(&self, writer: u16) -> Option<&Arc<str>> {
        self.writers
            .get(writer as usize)
            .and_then(|w| w.service.as_ref())
    }

    /// Process start time of the writer of an event (0 when unknown), which
    /// tells apart two processes that had the same pid.
    pub fn start_time(&self, writer: u16) -> u64 {
        self.writers
            .get(writer as usize)
            .map_or(0, |w| w.start_time)
    }

    /// Forgets the messages of the previous batch.
    pub fn begin_batch(&mut self) {
        self.messages.clear();
    }

    /// Text of an exception message, read once per batch so every consumer
    /// of the batch sees the same text.
    pub fn message(&mut self, names: &Names, msg: MsgRef) -> Option<Arc<str>> {
        self.read_message(names, msg).map(|m| m.text.clone())
    }

    /// Stack trace attached to an exception message, read with it once per
    /// batch (a message whose stack was lost reads as lost as a whole).
    pub fn stack(&mut self, names: &Names, msg: MsgRef) -> Option<Arc<str>> {
        self.read_message(names, msg).and_then(|m| m.stack.clone())
    }

    fn read_message(&mut self, names: &Names, msg: MsgRef) -> Option<&ReadMessage> {
        if msg.0 == 0 {
            return None;
        }
        self.messages
            .entry(msg.0)
            .or_insert_with(|| {
                names.message_with_stack(msg).map(|m| ReadMessage {
                    text: Arc::from(m.text),
                    stack: m.stack.map(Arc::from),
                })
            })
            .as_ref()
    }
}
