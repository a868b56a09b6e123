//! The writer handle: [`Ring`] and the emit functions.
//!
//! The hot path (`Ring::record` and the `emit_*` helpers built on it) reads
//! the clock and the thread's cached ids, finds the thread's lane in a
//! thread-local table, and writes 16 words into the lane's next slot plus
//! one Release store of the lane's tail ([`held`]). It never allocates,
//! takes a lock, makes a syscall or copies a string: names arrive as
//! interned [`StrId`]s, cached per call site with [`name!`](crate::name) or
//! looked up by hash. Only a thread's first event in a ring (which takes a
//! lane with one CAS) and events of threads beyond the lanes (which lock a
//! shared lane per event) do more.

mod held;

use crate::context::{self, SpanContext};
use crate::error::OpenError;
use crate::file::{FullPolicy, HeaderInfo, Mapping};
use crate::layout::{Params, HEARTBEAT_EVERY, NO_WRITER};
use crate::record::{Event, Kind, Method, MsgRef, StrId, FLAG_ERROR, FLAG_SAMPLED};
use crate::ring::{ring_position, Begun, Counters, Registration, RingRef};
use crate::sync::local::{AtomicU32, AtomicU64, Ordering::Relaxed};
use crate::{clock, process};
use held::{Lease, Placed};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options for creating a ring. An existing ring keeps the shape its creator
/// chose; only `service` applies to every process that opens it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingOptions {
    /// Event slots of all lanes together, a power of two (default 262144:
    /// 32 MiB of slots, of which only the lanes threads write into take
    /// memory, 2 MiB each).
    pub capacity: u64,
    /// Lanes, a power of two: threads that write at once without sharing a
    /// cache line, each lane `capacity / lanes` slots (what one thread can
    /// write while the reader sleeps). 0 (the default) picks up to 16 so
    /// that each lane keeps at least 16384 slots (see
    /// [`lane_count`](Self::lane_count)).
    pub lanes: u64,
    /// What happens when the ring is full (default drop-newest).
    pub policy: FullPolicy,
    /// String-index entries, a power of two (default 4096).
    pub string_entries: u64,
    /// String arena bytes, a multiple of 64 (default 256 KiB).
    pub arena_bytes: u64,
    /// Message slots for exception text, a power of two (default 256).
    pub message_slots: u64,
    /// Writer-table entries (default 64).
    pub writer_entries: u64,
    /// Service name recorded for this process (merges workers of one service).
    pub service: Option<String>,
}

impl Default for RingOptions {
    fn default() -> Self {
        RingOptions {
            capacity: DEFAULT_CAPACITY,
            lanes: 0,
            policy: FullPolicy::DropNewest,
            string_entries: 4096,
            arena_bytes: 256 * 1024,
            message_slots: 256,
            writer_entries: 64,
            service: None,
        }
    }
}

impl RingOptions {
    /// Sets the capacity.
    pub fn capacity(mut self, slots: u64) -> Self {
        self.capacity = slots;
        self
    }

    /// Sets the number of lanes (0: chosen from the capacity).
    pub fn lanes(mut self, lanes: u64) -> Self {
        self.lanes = lanes;
        self
    }

    /// Sets the full-ring policy.
    pub fn policy(mut self, policy: FullPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the service name.
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.service = Some(name.into());
        self
    }

    /// Defaults overridden by `PROFILIS_CAPACITY`, `PROFILIS_LANES`,
    /// `PROFILIS_POLICY` and `PROFILIS_SERVICE`. Also checks `PROFILIS_CLOCK` (see
    /// [`clock`](crate::clock)), which the event clock reads itself, and
    /// `PROFILIS_REDACT` (see [`redact`](crate::redact)), which message
    /// redaction reads itself.
    pub fn from_env() -> Result<Self, OpenError> {
        clock::choice_from_env().map_err(OpenError::InvalidOptions)?;
        crate::redact::MessageRules::from_env().map_err(OpenError::InvalidOptions)?;
        let mut o = RingOptions::default();
        if let Ok(v) = std::env::var("PROFILIS_CAPACITY") {
            o.capacity = v.parse().map_err(|_| {
                OpenError::InvalidOptions(format!("PROFILIS_CAPACITY={v:?} is not a number"))
            })?;
        }
        if let Ok(v) = std::env::var("PROFILIS_LANES") {
            o.lanes = v.parse().map_err(|_| {
                OpenError::InvalidOptions(format!("PROFILIS_LANES={v:?} is not a number"))
            })?;
        }
        if let Ok(v) = std::env::var("PROFILIS_POLICY") {
            o.policy = v
                .parse()
                .map_err(|e| OpenError::InvalidOptions(format!("PROFILIS_POLICY: {e}")))?;
        }
        if let Ok(v) = std::env::var("PROFILIS_SERVICE") {
            if !v.is_empty() {
                o.service = Some(v);
            }
        }
        Ok(o)
    }

    /// The lane count used: `lanes`, or when it is 0, as many lanes of
    /// 16384 slots as the capacity holds, at most
    /// 16 and at least one. So the default 262144 slots make
    /// 16 lanes, 65536 make 4, and a ring under 32768 slots has one lane,
    /// which every thread shares.
    pub fn lane_count(&self) -> u64 {
        if self.lanes != 0 {
            return self.lanes;
        }
        let fit = (self.capacity / MIN_DEFAULT_LANE_SLOTS).clamp(1, DEFAULT_LANES);
        // The largest power of two not above `fit`.
        1 << (63 - fit.leading_zeros())
    }

    fn params(&self) -> Params {
        Params {
            capacity: self.capacity,
            lanes: self.lane_count(),
            string_entries: self.string_entries,
            arena_bytes: self.arena_bytes,
            message_slots: self.message_slots,
            writer_entries: self.writer_entries,
        }
    }
}

/// Event slots of a ring whose options leave the capacity to the library.
pub const DEFAULT_CAPACITY: u64 = 1 << 18;
/// Most lanes of a ring whose options leave the count to the library.
pub const DEFAULT_LANES: u64 = 16;
/// Fewest slots of a lane when the library picks the lane count.
pub const MIN_DEFAULT_LANE_SLOTS: u64 = 1 << 14;

/// The ring file used when `PROFILIS_RING` is not set:
/// `$PROFILIS_DIR/profilis-<uid>.ring`, with `PROFILIS_DIR` defaulting to
/// `/dev/shm`.
pub fn default_ring_path() -> PathBuf {
    if let Some(p) = std::env::var_os("PROFILIS_RING").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let dir = std::env::var_os("PROFILIS_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/shm"));
    // SAFETY: geteuid has no preconditions.
    dir.join(format!("profilis-{}.ring", unsafe { libc::geteuid() }))
}

/// What happened to one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    /// Committed into the ring.
    Written,
    /// The ring was full; counted in `dropped`.
    Dropped,
    /// No ring: `init` was not called or failed.
    Disabled,
}

/// Optional event fields; `Default` leaves them empty.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fields {
    /// [`FLAG_ERROR`](crate::record::FLAG_ERROR) and friends.
    pub flags: u8,
    /// HTTP method.
    pub method: Method,
    /// HTTP status.
    pub status: u16,
    /// Duration in ns.
    pub dur_ns: u64,
    /// Exception type.
    pub exception_type: StrId,
    /// Exception message (see [`Ring::message`]).
    pub message: MsgRef,
    /// DB rows, request bytes in, or custom value bits.
    pub value: u64,
    /// Response bytes out.
    pub value2: u64,
    /// End of the measured work in `CLOCK_MONOTONIC` ns; 0 means "now".
    pub ts_mono_ns: u64,
    /// Trace context; `None` means the thread's current context.
    pub span: Option<SpanContext>,
}

/// Something that names an event: an interned id, a call-site cache, or text
/// looked up by hash.
pub trait Name {
    /// The id of this name in `ring`.
    fn str_id(&self, ring: &Ring) -> StrId;
}

impl Name for StrId {
    #[inline]
    fn str_id(&self, _: &Ring) -> StrId {
        *self
    }
}

impl Name for &str {
    #[inline]
    fn str_id(&self, ring: &Ring) -> StrId {
        ring.intern(self)
    }
}

impl Name for String {
    #[inline]
    fn str_id(&self, ring: &Ring) -> StrId {
        ring.intern(self)
    }
}

impl Name for &String {
    #[inline]
    fn str_id(&self, ring: &Ring) -> StrId {
        ring.intern(self)
    }
}

impl Name for &CallSite {
    #[inline]
    fn str_id(&self, ring: &Ring) -> StrId {
        self.id(ring)
    }
}

/// A per-call-site cache of an interned name; create one with
/// [`name!`](crate::name).
pub struct CallSite {
    text: &'static str,
    /// `ring instance << 32 | id`, 0 when empty.
    cached: AtomicU64,
}

impl CallSite {
    /// A cache for `text`.
    pub const fn new(text: &'static str) -> CallSite {
        CallSite {
            text,
            cached: AtomicU64::new(0),
        }
    }

    /// The text.
    pub fn text(&self) -> &'static str {
        self.text
    }

    /// The id of the text in `ring`, interned on first use.
    #[inline]
    pub fn id(&self, ring: &Ring) -> StrId {
        let c = self.cached.load(Relaxed);
        if c >> 32 == ring.inner.instance as u64 {
            return StrId(c as u32);
        }
        let id = ring.intern(self.text);
        if id != StrId::OVERFLOW {
            self.cached
                .store((ring.inner.instance as u64) << 32 | id.0 as u64, Relaxed);
        }
        id
    }
}

/// A per-call-site cached name: `profilis::emit_fn(profilis::name!("load"), ..)`.
#[macro_export]
macro_rules! name {
    ($text:expr) => {{
        static SITE: $crate::CallSite = $crate::CallSite::new($text);
        &SITE
    }};
}

static NEXT_INSTANCE: AtomicU32 = AtomicU32::new(1);

struct Inner {
    view: RingRef<'static>,
    // Declared after `view`, so it is dropped (unmapped) after any use of it.
    mapping: Mapping,
    instance: u32,
    /// `pid << 16 | writer index` registered for the current process.
    writer: AtomicU64,
    service: Option<String>,
}

/// A writer's handle on a ring file. Cheap to clone; thread-safe.
#[derive(Clone)]
pub struct Ring {
    inner: Arc<Inner>,
}

impl Ring {
    /// Opens the ring at `path`, creating it with `options` if it does not
    /// exist (atomically, mode 0600, never through a symlink).
    pub fn create_or_open(path: impl AsRef<Path>, options: RingOptions) -> Result<Ring, OpenError> {
        let mapping = Mapping::create_or_open(path.as_ref(), options.params(), options.policy)?;
        Ok(Ring::from_mapping(mapping, options.service))
    }

    /// Opens an existing ring at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Ring, OpenError> {
        Ok(Ring::from_mapping(Mapping::open(path.as_ref())?, None))
    }

    fn from_mapping(mapping: Mapping, service: Option<String>) -> Ring {
        // Measure the event clock now rather than in the first event.
        clock::calibrate();
        // SAFETY: `view` is stored next to `mapping` in `Inner`, never handed
        // out with a lifetime longer than a borrow of the `Ring`, and
        // `Inner`'s fields drop after their last use.
        let view = unsafe { mapping.view_unbounded() };
        Ring {
            inner: Arc::new(Inner {
                view,
                mapping,
                instance: NEXT_INSTANCE.fetch_add(1, Relaxed),
                writer: AtomicU64::new(0),
                service,
            }),
        }
    }

    /// The shared structures.
    #[inline]
    pub fn view(&self) -> &RingRef<'_> {
        &self.inner.view
    }

    /// Path of the ring file.
    pub fn path(&self) -> &Path {
        self.inner.mapping.path()
    }

    /// The ring's identity and shape.
    pub fn info(&self) -> &HeaderInfo {
        self.inner.mapping.info()
    }

    /// Interns `text` (cut to 1024 bytes) and returns its id. A full table
    /// yields [`StrId::OVERFLOW`] (counted), never an error.
    #[inline]
    pub fn intern(&self, text: &str) -> StrId {
        self.view().intern(text)
    }

    /// Stores variable text (an exception message) for an event to
    /// reference: redacted by [`redact::message`](crate::redact::message)
    /// (digits, e-mail addresses, quoted values and the user's patterns, by
    /// default), then cut to 240 bytes.
    pub fn message(&self, text: &str) -> MsgRef {
        self.message_with_stack(text, None)
    }

    /// Stores an exception message and, when given, its stack trace for an
    /// event to reference: the message redacted by
    /// [`redact::message`](crate::redact::message) and cut to 240 bytes,
    /// the stack redacted by [`redact::stack`](crate::redact::stack) (frame
    /// locations kept). The stack is text in "most recent call last" order;
    /// past [`Ring::stack_capacity`] bytes its outer frames are cut (see
    /// [`crate::messages::bound_stack`]). Every message and stack a writer
    /// stores goes through here. Only error events call it: it is never on
    /// the path of other events.
    #[cold]
    pub fn message_with_stack(&self, text: &str, stack: Option<&str>) -> MsgRef {
        // Cut first, so the innermost frames are the ones kept; redaction
        // never lengthens a text.
        let stack = stack.map(|s| crate::messages::bound_stack(s, self.stack_capacity()));
        let stack = stack.as_deref().map(crate::redact::stack);
        crate::redact::with_message(text, |text| {
            self.view()
                .record_message_with_stack(text, stack.as_deref())
        })
    }

    /// Most bytes of stack trace one message carries in this ring (3600
    /// with the default 256 message slots).
    pub fn stack_capacity(&self) -> usize {
        crate::messages::stack_capacity(self.view().messages.len())
    }

    /// Writer-table index of this process, registering it on first use (and
    /// again after a fork).
    #[inline]
    pub(crate) fn writer_index(&self, pid: u32) -> u16 {
        let w = self.inner.writer.load(Relaxed);
        if (w >> 16) as u32 == pid {
            return w as u16;
        }
        self.register(pid)
    }

    #[cold]
    fn register(&self, pid: u32) -> u16 {
        let start = process::start_time(pid).unwrap_or(0);
        let view = self.view();
        let service = self
            .inner
            .service
            .as_deref()
            .map_or(0, |s| view.intern(s).0 as u64);
        let index = view
            .register_writer(&Registration {
                pid,
                start_time: start,
                service,
                wall_ns: clock::wall_ns(),
                mono_ns: clock::mono_ns(),
            })
            .unwrap_or(NO_WRITER);
        self.inner
            .writer
            .store((pid as u64) << 16 | index as u64, Relaxed);
        index
    }

    /// Records one event. This is the hot path every helper goes through.
    #[inline]
    pub fn record(&self, kind: Kind, name: StrId, fields: &Fields) -> Emit {
        let pid = process::pid();
        // Thread id and writer index come with the lane.
        let event = build_event(kind, name, fields, pid, 0);
        let (placed, writer) = held::place(self, pid, event.record());
        if let Placed::Written(w) = placed {
            // Every HEARTBEAT_EVERY events of a lane: its holder's process
            // is alive and writing.
            if w.pos.is_multiple_of(HEARTBEAT_EVERY) {
                self.heartbeat(writer, event.ts_mono_ns);
            }
        }
        self.account(writer, placed)
    }

    /// Charges what happened to an event to this process's writer entry.
    #[inline]
    fn account(&self, writer: u16, placed: Placed) -> Emit {
        let entry = || self.view().writers.get(writer as usize);
        match placed {
            Placed::Written(w) => {
                if w.overwrote {
                    if let Some(entry) = entry() {
                        entry.overwritten.fetch_add(1, Relaxed);
                    }
                }
                Emit::Written
            }
            Placed::Full | Placed::NoLane => {
                if let Some(entry) = entry() {
                    entry.dropped.fetch_add(1, Relaxed);
                }
                Emit::Dropped
            }
        }
    }

    #[cold]
    fn heartbeat(&self, writer: u16, ts: u64) {
        if let Some(entry) = self.view().writers.get(writer as usize) {
            entry.heartbeat_ns.store(ts, Relaxed);
            entry.emitted_hint.fetch_add(HEARTBEAT_EVERY, Relaxed);
        }
    }

    /// Counters of the ring as any process sees them: the consumer's counts
    /// as of its last commit (read consistently, never torn by a commit in
    /// progress) and the lanes as of now. `None` only when commits kept
    /// moving the state for the whole of a bounded number of retries.
    pub fn counters(&self) -> Option<Counters> {
        Counters::snapshot(self.view())
    }

    /// Records a request: route template, HTTP status, duration.
    #[inline]
    pub fn emit_req(&self, route: impl Name, status: u16, dur_ns: u64) -> Emit {
        let fields = Fields {
            status,
            dur_ns,
            flags: if status >= 500 { FLAG_ERROR } else { 0 },
            ..Fields::default()
        };
        self.record(Kind::Req, route.str_id(self), &fields)
    }

    /// Records a function call: name, duration, whether it failed.
    #[inline]
    pub fn emit_fn(&self, name: impl Name, dur_ns: u64, error: bool) -> Emit {
        let fields = Fields {
            dur_ns,
            flags: if error { FLAG_ERROR } else { 0 },
            ..Fields::default()
        };
        self.record(Kind::Fn, name.str_id(self), &fields)
    }

    /// Records a database query: redacted text, duration, rows.
    #[inline]
    pub fn emit_db(&self, query: impl Name, dur_ns: u64, rows: u64) -> Emit {
        let fields = Fields {
            dur_ns,
            value: rows,
            ..Fields::default()
        };
        self.record(Kind::Db, query.str_id(self), &fields)
    }

    /// Records a custom metric sample.
    #[inline]
    pub fn emit_custom(&self, name: impl Name, value: f64) -> Emit {
        let fields = Fields {
            value: value.to_bits(),
            ..Fields::default()
        };
        self.record(Kind::Custom, name.str_id(self), &fields)
    }

    /// Begins an event without writing it: the first half of a two-phase
    /// emit, finished by [`Claim::commit`]. While the claim is open, the
    /// position is marked as being written: a process that dies (or is
    /// killed) holding it leaves exactly what a writer killed mid-event
    /// leaves, which the consumer counts as abandoned once it sees the
    /// process gone. A claim dropped without a commit is counted as
    /// abandoned too. The claim is bound to the calling thread, and holds
    /// its lane until it ends: the thread's own lane, or, for a thread
    /// without one (and in a ring of one lane), a shared lane, whose other
    /// users' events are refused meanwhile (counted) once their bounded wait
    /// for a shared lane runs out. Keep claims short.
    pub fn claim(&self) -> Result<Claim<'_>, Emit> {
        let pid = process::pid();
        let writer = self.writer_index(pid);
        let Some(mut lease) = Lease::take(self, pid, writer) else {
            return Err(self.account(writer, Placed::NoLane));
        };
        match self.view().begin(lease.cursor()) {
            Ok(begun) => {
                let who = crate::ring::Owner {
                    pid,
                    tid: process::tid(),
                    start_time: 0,
                    writer,
                };
                self.view().stamp_identity(&begun, &who);
                Ok(Claim {
                    ring: self,
                    begun,
                    pid,
                    writer,
                    lease: Some(lease),
                    _thread: PhantomData,
                })
            }
            Err(_) => {
                lease.end(self, pid);
                Err(self.account(writer, Placed::Full))
            }
        }
    }
}

/// A begun, not yet committed event (see [`Ring::claim`]).
pub struct Claim<'a> {
    ring: &'a Ring,
    begun: Begun<'a>,
    pid: u32,
    writer: u16,
    lease: Option<Lease>,
    /// The lane belongs to the thread that claimed: not `Send`.
    _thread: PhantomData<*const ()>,
}

impl Claim<'_> {
    /// The ring-wide position of the event (see
    /// [`ring_position`](crate::ring::ring_position)).
    pub fn position(&self) -> u64 {
        let lane = self.lease.as_ref().map_or(0, |l| match l {
            Lease::Own { cursor } | Lease::Shared { cursor, .. } => cursor.lane,
        });
        ring_position(lane as usize, self.begun.pos, self.ring.view().lanes.len())
    }

    /// Writes `event` (its `position`, `lane` and `writer` are ignored) and
    /// commits it.
    pub fn commit(mut self, event: &Event) -> Emit {
        let mut lease = self.lease.take().expect("a claim is committed once");
        let event = Event {
            writer: self.writer,
            ..*event
        };
        let pos = self.begun.pos;
        self.ring
            .view()
            .finish(lease.cursor(), &self.begun, &event.encode(pos));
        lease.end(self.ring, self.pid);
        Emit::Written
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Some(mut lease) = self.lease.take() {
            self.ring.view().abandon(lease.cursor(), &self.begun);
            lease.end(self.ring, self.pid);
        }
    }
}

/// Builds an [`Event`] the way [`Ring::record`] does, for [`Claim::commit`].
pub fn event_now(kind: Kind, name: StrId, fields: &Fields) -> Event {
    Event {
        tid: process::tid(),
        ..build_event(kind, name, fields, process::pid(), NO_WRITER)
    }
}

#[inline]
fn build_event(kind: Kind, name: StrId, fields: &Fields, pid: u32, writer: u16) -> Event {
    let span = fields.span.unwrap_or_else(context::current);
    let mut flags = fields.flags;
    if span.sampled {
        flags |= FLAG_SAMPLED;
    }
    Event {
        position: 0,
        lane: 0,
        kind,
        flags,
        method: fields.method,
        status: fields.status,
        name,
        exception_type: fields.exception_type,
        message: fields.message,
        pid,
        // Filled in with the lane (the thread's table holds it).
        tid: 0,
        ts_mono_ns: if fields.ts_mono_ns != 0 {
            fields.ts_mono_ns
        } else {
            clock::event_ns()
        },
        dur_ns: fields.dur_ns,
        trace_id: span.trace_id,
        span_id: span.span_id,
        parent_span_id: span.parent_span_id,
        value: fields.value,
        value2: fields.value2,
        writer,
    }
}
