//! The consumer API: attach to a ring file and drain it in batches.
//!
//! ```no_run
//! let mut consumer = profilis::Consumer::attach("/dev/shm/app.ring")?;
//! loop {
//!     let batch = consumer.read(4096);
//!     for event in batch.events {
//!         println!("{} {} {}ns", event.kind.as_str(), batch.names.name(event.name), event.dur_ns);
//!     }
//!     consumer.commit();
//!     # break;
//! }
//! # Ok::<(), profilis::OpenError>(())
//! ```
//!
//! Delivery is at-least-once across a consumer crash: events returned by
//! [`Consumer::read`] are released only by [`Consumer::commit`], so a
//! consumer killed in between sees them again after re-attaching (their
//! [`Event::position`] identifies them). Nothing committed is ever delivered
//! twice, and every position ends in exactly one counter.
//!
//! Events come lane by lane: those of one thread in the order it wrote
//! them, those of different threads ordered by their timestamps only.

use crate::error::OpenError;
use crate::file::{HeaderInfo, Mapping};
use crate::layout::NO_WRITER;
use crate::messages::Message;
use crate::record::{Event, MsgRef, StrId};
use crate::ring::{Anomaly, ConsumerCore, Counters, Loss, RingRef};
use crate::sync::Ordering::Relaxed;
use crate::{clock, process};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How often `read` checks the file size (an `fstat`).
const SIZE_CHECK_NS: u64 = 100_000_000;

/// Consumer settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsumerOptions {
    /// How often the writers holding lanes are checked for a process that
    /// is gone, whose lanes are then taken back (default 50 ms). A writer
    /// that dies mid-event holds up nobody meanwhile: only its own lane
    /// stops growing.
    pub liveness_interval: Duration,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        ConsumerOptions {
            liveness_interval: Duration::from_millis(50),
        }
    }
}

/// Resolves string ids and message references of the ring's events, with a
/// cache (ids never change meaning once complete).
pub struct Names {
    view: RingRef<'static>,
    cache: RefCell<HashMap<u32, Arc<str>>>,
    unresolved: Cell<u64>,
    messages_unread: Cell<u64>,
}

impl Names {
    /// Text of `id`; a placeholder such as `<overflow>` when it has none.
    pub fn name(&self, id: StrId) -> Arc<str> {
        if let Some(s) = self.cache.borrow().get(&id.0) {
            return s.clone();
        }
        match self.view.resolve(id) {
            Ok(text) => {
                let text: Arc<str> = text.into();
                self.cache.borrow_mut().insert(id.0, text.clone());
                text
            }
            Err(e) => {
                if id != StrId::NONE {
                    self.unresolved.set(self.unresolved.get() + 1);
                }
                e.placeholder().into()
            }
        }
    }

    /// Text of a message reference, `None` if there is none or it was
    /// overwritten before it could be read.
    pub fn message(&self, msg: MsgRef) -> Option<String> {
        self.message_with_stack(msg).map(|m| m.text)
    }

    /// The message and stack trace of a reference, `None` if there is none
    /// or any slot of it was overwritten before it could be read (counted
    /// in [`Names::messages_unread`]: a lost stack loses its message).
    pub fn message_with_stack(&self, msg: MsgRef) -> Option<Message> {
        if msg.0 == 0 {
            return None;
        }
        let message = self.view.read_message_with_stack(msg);
        if message.is_none() {
            self.messages_unread.set(self.messages_unread.get() + 1);
        }
        message
    }

    /// Name lookups that found no text (overflow or damaged), a counted loss
    /// of detail rather than of events.
    pub fn unresolved(&self) -> u64 {
        self.unresolved.get()
    }

    /// Message lookups that found the text overwritten by newer messages
    /// (or damaged).
    pub fn messages_unread(&self) -> u64 {
        self.messages_unread.get()
    }
}

/// Events returned by one [`Consumer::read`].
pub struct Batch<'a> {
    /// The events, lane by lane.
    pub events: &'a [Event],
    /// Positions of the batch that produced no event, each with the writer
    /// it came from when the lane still tells; counted by the commit.
    pub losses: &'a [Loss],
    /// Lost positions of the batch beyond those listed in `losses`.
    pub losses_untold: u64,
    /// Resolves their names and messages.
    pub names: &'a Names,
    wall_offset_ns: u64,
}

impl Batch<'_> {
    /// Wall-clock ns since the Unix epoch of an event's monotonic timestamp.
    pub fn wall_ns(&self, event: &Event) -> u64 {
        event.ts_mono_ns.wrapping_add(self.wall_offset_ns)
    }
}

/// Use of a ring's string table (see [`Consumer::string_table`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StringTableUse {
    /// Index entries (the most distinct strings).
    pub entries: u64,
    /// Index entries taken.
    pub entries_used: u64,
    /// Arena size in bytes.
    pub arena_bytes: u64,
    /// Arena bytes taken.
    pub arena_used: u64,
    /// Interning requests that got the overflow id.
    pub overflow: u64,
}

/// A process that wrote into the ring, from the writer table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterInfo {
    /// Index in the table (events carry it).
    pub index: u16,
    /// Process id.
    pub pid: u32,
    /// Process start time (ticks after boot).
    pub start_time: u64,
    /// Service name, if the writer set one.
    pub service: Option<Arc<str>>,
    /// Wall-clock ns when it registered.
    pub registered_wall_ns: u64,
    /// Monotonic ns of its latest heartbeat.
    pub heartbeat_mono_ns: u64,
    /// Events it could not place (ring full).
    pub dropped: u64,
    /// Events it emitted, in steps of 1024.
    pub emitted_hint: u64,
    /// Its events overwritten before they were read (overwrite-oldest).
    pub overwritten: u64,
    /// Whether that process (same pid and start time) still runs.
    pub alive: bool,
}

/// One lane of the ring, as the consumer sees it (see [`Consumer::lanes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaneInfo {
    /// Index of the lane.
    pub index: u32,
    /// True for a lane shared by threads that have none of their own.
    pub shared: bool,
    /// pid of the thread holding it (0 when free).
    pub pid: u32,
    /// Linux tid of the thread holding it (0 when free).
    pub tid: u32,
    /// Writer-table index of the holder's process.
    pub writer: u16,
    /// Positions written into it.
    pub tail: u64,
    /// Positions the consumer has resolved.
    pub head: u64,
    /// Events refused because it was full.
    pub dropped: u64,
}

/// The single consumer of a ring.
pub struct Consumer {
    core: ConsumerCore,
    names: Names,
    view: RingRef<'static>,
    wall_offset_ns: u64,
    truncated: bool,
    last_size_check_ns: u64,
    liveness_interval_ns: u64,
    last_liveness_ns: u64,
    /// The writers' processes, checked at every liveness interval.
    watch: process::Watch,
    /// Counters as of the last read of an intact file: what a truncated
    /// ring reports (its lanes then read as zeros).
    last_intact: Counters,
    /// Unresolved lookups already handed to the core.
    unresolved_noted: (u64, u64),
    // Declared last: unmapped after every view above is gone.
    mapping: Mapping,
}

impl Consumer {
    /// Attaches with default options.
    pub fn attach(path: impl AsRef<Path>) -> Result<Consumer, OpenError> {
        Consumer::attach_with(path, ConsumerOptions::default())
    }

    /// Attaches to the ring at `path`: validates the file, takes the
    /// consumer lock (one consumer per ring), and resumes from the stored
    /// read position.
    pub fn attach_with(
        path: impl AsRef<Path>,
        options: ConsumerOptions,
    ) -> Result<Consumer, OpenError> {
        let path = path.as_ref();
        let mapping = Mapping::open(path)?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(mapping.file());
        // SAFETY: `fd` is a valid open descriptor owned by `mapping`.
        if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            return Err(if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                OpenError::Busy(path.to_owned())
            } else {
                OpenError::Io {
                    action: "locking ring file",
                    path: path.to_owned(),
                    source: err,
                }
            });
        }
        // SAFETY: the views are stored in the same struct as `mapping`,
        // which is declared last and so dropped after them.
        let view = unsafe { mapping.view_unbounded() };
        let liveness_interval_ns =
            options.liveness_interval.as_nanos().min(u64::MAX as u128) as u64;
        let core = ConsumerCore::attach(view).map_err(|s| OpenError::InconsistentState {
            path: path.to_owned(),
            what: s.what,
        })?;
        let last_intact = core.counters(view);
        view.header
            .consumer_pid
            .store(process::pid() as u64, Relaxed);
        Ok(Consumer {
            core,
            names: Names {
                view,
                cache: RefCell::new(HashMap::new()),
                unresolved: Cell::new(0),
                messages_unread: Cell::new(0),
            },
            view,
            wall_offset_ns: clock::wall_offset_ns(),
            truncated: false,
            last_size_check_ns: 0,
            liveness_interval_ns,
            last_liveness_ns: 0,
            watch: process::Watch::default(),
            last_intact,
            unresolved_noted: (0, 0),
            mapping,
        })
    }

    /// Reads up to `limit` positions and returns the ready events. Call
    /// [`commit`](Consumer::commit) once they are processed. A ring whose
    /// file was truncated returns nothing more (see
    /// [`truncated`](Consumer::truncated)).
    pub fn read(&mut self, limit: usize) -> Batch<'_> {
        let now = clock::mono_ns();
        self.wall_offset_ns = clock::wall_offset_ns();
        if !self.truncated && now.saturating_sub(self.last_size_check_ns) >= SIZE_CHECK_NS {
            self.last_size_check_ns = now;
            self.truncated = self.mapping.truncated();
        }
        if self.truncated {
            self.core.discard();
        } else {
            self.last_intact = self.core.counters(self.view);
            self.view.header.consumer_heartbeat_ns.store(now, Relaxed);
            if now.saturating_sub(self.last_liveness_ns) >= self.liveness_interval_ns {
                self.last_liveness_ns = now;
                self.reclaim_dead();
            }
            self.core.read(self.view, limit);
            if self.mapping.faulted() {
                // Part of what was just read came from zero pages.
                self.truncated = true;
                self.core.discard();
            }
        }
        self.batch()
    }

    /// Takes back the lanes of writers whose process is gone now, rather
    /// than at the next liveness check; returns how many were freed. The
    /// positions they died in are read by the next [`read`](Self::read).
    pub fn reclaim_dead(&mut self) -> usize {
        let watch = &mut self.watch;
        let mut alive = |pid: u32, start: u64| watch.runs(pid, start);
        let freed = self.core.reclaim_dead(self.view, &mut alive);
        self.watch.end_round();
        freed
    }

    /// True once the ring file was found shorter than its header states
    /// (someone truncated it while attached). Such a ring yields nothing more
    /// and should be detached; the events not yet read are lost with the file.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Releases the last batch: its events count as received and their slots
    /// return to the writers.
    pub fn commit(&mut self) {
        if !self.truncated {
            let now = (
                self.names.unresolved.get(),
                self.names.messages_unread.get(),
            );
            self.core.note_unresolved(
                now.0 - self.unresolved_noted.0,
                now.1 - self.unresolved_noted.1,
            );
            self.unresolved_noted = now;
            self.core.commit(self.view);
        }
    }

    /// Reads, hands each event to `f`, and commits. Returns the number of
    /// events delivered, which can be 0 while positions were still consumed
    /// (lost ones): use [`lag`](Consumer::lag) to tell whether more is
    /// pending.
    pub fn poll(&mut self, limit: usize, mut f: impl FnMut(&Event, &Names)) -> usize {
        let batch = self.read(limit);
        for event in batch.events {
            f(event, batch.names);
        }
        let n = batch.events.len();
        self.commit();
        n
    }

    /// The events of the last [`read`](Consumer::read) again, without
    /// reading: lets the caller look at [`counters`](Consumer::counters),
    /// [`pending_losses`](Consumer::pending_losses) or
    /// [`writers`](Consumer::writers) while it holds the batch. Empty after
    /// a [`commit`](Consumer::commit).
    pub fn batch(&self) -> Batch<'_> {
        let (losses, losses_untold) = self.core.batch_losses();
        Batch {
            events: self.core.events(),
            losses,
            losses_untold,
            names: &self.names,
            wall_offset_ns: self.wall_offset_ns,
        }
    }

    /// Losses found by the last [`read`](Consumer::read) that its
    /// [`commit`](Consumer::commit) will count (abandoned, torn or
    /// overwritten positions), lane by lane, each with the writer when the
    /// lane still tells; the same as the batch's `losses`. After the commit
    /// they are returned by [`take_losses`](Consumer::take_losses).
    pub fn pending_losses(&self) -> &[Loss] {
        self.core.pending_losses()
    }

    /// Positions lost in the batches committed since the last call, and the
    /// number lost beyond what is kept between calls.
    pub fn take_losses(&mut self) -> (Vec<Loss>, u64) {
        self.core.take_losses()
    }

    /// Lanes found holding positions no protocol step produces (a damaged
    /// or tampered file) since the last call; each was reset and counted in
    /// [`Counters::repairs`].
    pub fn take_anomalies(&mut self) -> Vec<Anomaly> {
        self.core.take_anomalies()
    }

    /// Each lane's tail as of now; see [`caught_up`](Self::caught_up).
    pub fn tails(&self) -> Vec<u64> {
        self.core.tails(self.view)
    }

    /// True once everything written before [`tails`](Self::tails) returned
    /// `marks` is read and committed.
    pub fn caught_up(&self, marks: &[u64]) -> bool {
        self.core.caught_up(self.view, marks)
    }

    /// Counters of the ring (for a ring whose file was truncated, as of the
    /// last read before that was found).
    pub fn counters(&self) -> Counters {
        if self.truncated {
            return self.last_intact;
        }
        self.core.counters(self.view)
    }

    /// Positions claimed but not yet consumed.
    pub fn lag(&self) -> u64 {
        self.counters().in_flight
    }

    /// Identity and shape of the ring.
    pub fn info(&self) -> &HeaderInfo {
        self.mapping.info()
    }

    /// Path of the ring file.
    pub fn path(&self) -> &Path {
        self.mapping.path()
    }

    /// Resolver for names and messages.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// Wall-clock ns of a monotonic timestamp, using an offset measured at
    /// the last read.
    pub fn wall_ns(&self, mono_ns: u64) -> u64 {
        mono_ns.wrapping_add(self.wall_offset_ns)
    }

    /// Interning requests that got the overflow id (string table full).
    pub fn strings_overflow(&self) -> u64 {
        self.view.header.strings_overflow.load(Relaxed)
    }

    /// How full the string table is: index entries and arena bytes in use
    /// against their sizes, and the interning requests refused (overflow).
    /// Counts the index, so it costs one load per entry: call it at the
    /// pace of a status report, not per event.
    pub fn string_table(&self) -> StringTableUse {
        let arena_bytes = self.info().params.arena_bytes;
        // ORDERING: Relaxed loads, no pair: a usage report, exact once
        // writers are quiet and at most slightly behind while they intern.
        StringTableUse {
            entries: self.view.strings.len() as u64,
            entries_used: self
                .view
                .strings
                .iter()
                .filter(|e| e.key.load(Relaxed) != 0)
                .count() as u64,
            arena_bytes,
            arena_used: self.view.header.arena_used.load(Relaxed).min(arena_bytes),
            overflow: self.strings_overflow(),
        }
    }

    /// Messages lost to contention for a message slot.
    pub fn messages_lost(&self) -> u64 {
        self.view.header.messages_lost.load(Relaxed)
    }

    /// Writer processes that found the writer table full.
    pub fn writers_overflow(&self) -> u64 {
        self.view.header.writers_overflow.load(Relaxed)
    }

    /// The writer table: every process that registered.
    pub fn writers(&self) -> Vec<WriterInfo> {
        self.view
            .writer_table()
            .into_iter()
            .map(|entry| WriterInfo {
                index: entry.index,
                pid: entry.pid,
                start_time: entry.start_time,
                service: match entry.service {
                    0 => None,
                    id => Some(self.names.name(StrId(id as u32))),
                },
                registered_wall_ns: entry.registered_wall_ns,
                heartbeat_mono_ns: entry.heartbeat_ns,
                dropped: entry.dropped,
                emitted_hint: entry.emitted_hint,
                overwritten: entry.overwritten,
                alive: entry.start_time != 0 && process::is_alive(entry.pid, entry.start_time),
            })
            .collect()
    }

    /// The lane table: who holds each lane and how far it is written and
    /// read. Costs a few loads per lane.
    pub fn lanes(&self) -> Vec<LaneInfo> {
        let own = self.view.own_lanes();
        let heads = &self.core.state().heads;
        self.view
            .lanes
            .iter()
            .zip(heads)
            .enumerate()
            .map(|(i, (lane, &head))| {
                // ORDERING: Relaxed loads, no pair: a status report.
                let owner = lane.owner.load(Relaxed);
                let held = owner != 0 && owner != crate::layout::LANE_RECLAIMING;
                LaneInfo {
                    index: i as u32,
                    shared: i >= own,
                    pid: if held { (owner >> 32) as u32 } else { 0 },
                    tid: if held { owner as u32 } else { 0 },
                    writer: lane.owner_writer.load(Relaxed) as u16,
                    tail: lane.tail.load(Relaxed),
                    head,
                    dropped: lane.dropped.load(Relaxed),
                }
            })
            .collect()
    }

    /// Writer-table entry an event came from, if any.
    pub fn writer_of(&self, event: &Event) -> Option<u16> {
        (event.writer != NO_WRITER && (event.writer as usize) < self.view.writers.len())
            .then_some(event.writer)
    }
}
