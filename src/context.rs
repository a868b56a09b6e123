//! Runtime trace context: which trace and span the current thread is in.
//!
//! Every event carries the current trace id and span id. Ids come from a
//! per-thread generator (no syscall, no lock). A [`Span`](crate::Span) guard
//! enters a child context for its scope; [`enter`] and [`use_span`] set one
//! explicitly, for example to continue a trace received from another thread
//! or process.
//!
//! The context is thread-local. It crosses threads by explicit handoff
//! ([`bind`], or [`current`] + [`enter`]) and follows futures through
//! `.await` and `spawn` with the [`InSpanExt::in_span`] adapter, which enters
//! the context on every poll and restores the previous one after, so it works
//! on any executor, including multi-threaded work-stealing ones.
//!
//! W3C `traceparent` headers are parsed strictly with
//! [`SpanContext::from_traceparent`] and written with
//! [`SpanContext::to_traceparent`] / [`SpanContext::write_traceparent`].

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Where an event sits in a trace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SpanContext {
    /// W3C trace id; 0 means "no trace".
    pub trace_id: u128,
    /// Id of the current span; 0 means "no span".
    pub span_id: u64,
    /// Id of the parent span; 0 for a root span.
    pub parent_span_id: u64,
    /// Whether the trace is sampled (kept).
    pub sampled: bool,
}

impl SpanContext {
    /// No trace at all.
    pub const NONE: SpanContext = SpanContext {
        trace_id: 0,
        span_id: 0,
        parent_span_id: 0,
        sampled: false,
    };

    /// A new root: a fresh trace id and span id, sampled.
    #[inline]
    pub fn new_root() -> SpanContext {
        SpanContext::NONE.child()
    }

    /// Whether this is [`SpanContext::NONE`] (no trace).
    pub fn is_none(&self) -> bool {
        self.trace_id == 0
    }

    /// A child of `self`: same trace (a new one if `self` has none), a new
    /// span id, `self`'s span as parent.
    #[inline]
    pub fn child(&self) -> SpanContext {
        let (trace_id, sampled) = if self.trace_id == 0 {
            (new_trace_id(), true)
        } else {
            (self.trace_id, self.sampled)
        };
        SpanContext {
            trace_id,
            span_id: new_span_id(),
            parent_span_id: self.span_id,
            sampled,
        }
    }
}

/// Length of a version-00 `traceparent` header value.
pub const TRACEPARENT_LEN: usize = 55;

/// Why a `traceparent` header was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceparentError {
    /// Too short, or longer than its version allows.
    #[error("traceparent has the wrong length ({0} bytes)")]
    Length(usize),
    /// A field holds something other than lower-case hex digits.
    #[error("traceparent holds a character that is not a lower-case hex digit")]
    NotHex,
    /// A separator is not `-`.
    #[error("traceparent fields are not separated by '-'")]
    Separator,
    /// Version `ff`, which the specification forbids.
    #[error("traceparent version ff is invalid")]
    Version,
    /// The trace id is all zeros.
    #[error("traceparent trace id is all zeros")]
    ZeroTraceId,
    /// The parent id is all zeros.
    #[error("traceparent parent id is all zeros")]
    ZeroParentId,
}

/// Parses `text` as lower-case hex (the only case W3C trace context allows).
fn parse_hex(text: &[u8]) -> Result<u128, TraceparentError> {
    let mut value: u128 = 0;
    for &c in text {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return Err(TraceparentError::NotHex),
        };
        value = value << 4 | digit as u128;
    }
    Ok(value)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_hex(out: &mut [u8], value: u128) {
    let n = out.len();
    for (i, slot) in out.iter_mut().enumerate() {
        let shift = 4 * (n - 1 - i);
        *slot = HEX[(value >> shift) as usize & 0xf];
    }
}

impl SpanContext {
    /// Parses a W3C `traceparent` header value
    /// (`version-traceid-parentid-flags`) into the context of the remote
    /// parent span: `trace_id`, `span_id` = the parent id, `sampled` = flag
    /// bit 0. Continue the trace with [`SpanContext::child`].
    ///
    /// Strict, as the W3C Trace Context specification requires: lower-case
    /// hex only, `-` separators, no version `ff`, no all-zero ids, exactly 55
    /// bytes for version `00`. A later version may be longer if the 56th
    /// byte is `-`; its first four fields are read as version `00`'s.
    ///
    /// ```
    /// use profilis::SpanContext;
    /// let parent = SpanContext::from_traceparent(
    ///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    /// )?;
    /// assert_eq!(parent.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
    /// assert_eq!(parent.span_id, 0x00f067aa0ba902b7);
    /// assert!(parent.sampled);
    /// assert!(SpanContext::from_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").is_err());
    /// # Ok::<(), profilis::context::TraceparentError>(())
    /// ```
    pub fn from_traceparent(header: &str) -> Result<SpanContext, TraceparentError> {
        Self::from_traceparent_bytes(header.as_bytes())
    }

    /// [`SpanContext::from_traceparent`] over raw header bytes.
    pub fn from_traceparent_bytes(b: &[u8]) -> Result<SpanContext, TraceparentError> {
        if b.len() < TRACEPARENT_LEN {
            return Err(TraceparentError::Length(b.len()));
        }
        let version = parse_hex(&b[0..2])?;
        if version == 0xff {
            return Err(TraceparentError::Version);
        }
        if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return Err(TraceparentError::Separator);
        }
        if b.len() > TRACEPARENT_LEN && (version == 0 || b[TRACEPARENT_LEN] != b'-') {
            return Err(TraceparentError::Length(b.len()));
        }
        let trace_id = parse_hex(&b[3..35])?;
        let parent_id = parse_hex(&b[36..52])? as u64;
        let flags = parse_hex(&b[53..55])? as u8;
        if trace_id == 0 {
            return Err(TraceparentError::ZeroTraceId);
        }
        if parent_id == 0 {
            return Err(TraceparentError::ZeroParentId);
        }
        Ok(SpanContext {
            trace_id,
            span_id: parent_id,
            parent_span_id: 0,
            sampled: flags & 1 == 1,
        })
    }

    /// Writes this context as a version-00 `traceparent` value into `out`,
    /// without allocating. `self` should not be [`SpanContext::NONE`]
    /// (all-zero ids are invalid on the wire).
    pub fn write_traceparent(&self, out: &mut [u8; TRACEPARENT_LEN]) {
        out[0] = b'0';
        out[1] = b'0';
        out[2] = b'-';
        write_hex(&mut out[3..35], self.trace_id);
        out[35] = b'-';
        write_hex(&mut out[36..52], self.span_id as u128);
        out[52] = b'-';
        out[53] = b'0';
        out[54] = if self.sampled { b'1' } else { b'0' };
    }

    /// This context as a version-00 `traceparent` value.
    ///
    /// ```
    /// use profilis::SpanContext;
    /// let ctx = SpanContext::new_root();
    /// let header = ctx.to_traceparent();
    /// assert_eq!(SpanContext::from_traceparent(&header)?, ctx);
    /// # Ok::<(), profilis::context::TraceparentError>(())
    /// ```
    pub fn to_traceparent(&self) -> String {
        let mut out = [0u8; TRACEPARENT_LEN];
        self.write_traceparent(&mut out);
        out.iter().map(|&b| b as char).collect()
    }
}

/// The thread's current context, one word per cell, so that entering and
/// leaving a span are a few word loads and stores. (One `Cell<SpanContext>`,
/// copied whole in and out, made an enter-exit pair about twice as slow:
/// the struct is moved in 16-byte pieces that the next read, of other
/// sizes, has to wait for.)
struct Current {
    trace_lo: Cell<u64>,
    trace_hi: Cell<u64>,
    span_id: Cell<u64>,
    parent_span_id: Cell<u64>,
    sampled: Cell<bool>,
}

impl Current {
    #[inline]
    fn get(&self) -> SpanContext {
        SpanContext {
            trace_id: (self.trace_hi.get() as u128) << 64 | self.trace_lo.get() as u128,
            span_id: self.span_id.get(),
            parent_span_id: self.parent_span_id.get(),
            sampled: self.sampled.get(),
        }
    }

    #[inline]
    fn set(&self, ctx: SpanContext) {
        self.trace_lo.set(ctx.trace_id as u64);
        self.trace_hi.set((ctx.trace_id >> 64) as u64);
        self.span_id.set(ctx.span_id);
        self.parent_span_id.set(ctx.parent_span_id);
        self.sampled.set(ctx.sampled);
    }
}

thread_local! {
    static CURRENT: Current = const {
        Current {
            trace_lo: Cell::new(0),
            trace_hi: Cell::new(0),
            span_id: Cell::new(0),
            parent_span_id: Cell::new(0),
            sampled: Cell::new(false),
        }
    };
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// The current thread's context.
#[inline]
pub fn current() -> SpanContext {
    CURRENT.with(Current::get)
}

/// The current trace id, `None` outside any trace.
#[inline]
pub fn trace_id() -> Option<u128> {
    Some(current().trace_id).filter(|&id| id != 0)
}

/// The current span id, `None` outside any span.
#[inline]
pub fn span_id() -> Option<u64> {
    Some(current().span_id).filter(|&id| id != 0)
}

/// Makes `ctx` current until the returned guard drops, which restores the
/// previous context.
#[inline]
pub fn enter(ctx: SpanContext) -> ContextGuard {
    ContextGuard {
        previous: replace(ctx),
    }
}

/// Makes `ctx` current and returns the previous context, which the caller
/// must restore itself. Prefer [`enter`], whose guard restores it.
#[inline]
pub fn replace(ctx: SpanContext) -> SpanContext {
    CURRENT.with(|c| {
        let previous = c.get();
        c.set(ctx);
        previous
    })
}

/// Makes `ctx` current, for a caller that restores the previous context
/// itself (a span guard, which read it already).
#[inline]
pub(crate) fn set(ctx: SpanContext) {
    CURRENT.with(|c| c.set(ctx));
}

/// Runs `f` with `ctx` current: spans started inside inherit `ctx`'s trace
/// and record `ctx`'s span as their parent.
///
/// ```
/// use profilis::context::{self, SpanContext};
/// let request = SpanContext::new_root();
/// context::use_span(request, || {
///     assert_eq!(context::trace_id(), Some(request.trace_id));
///     let _inner = profilis::span("inner"); // a child of `request`
///     assert_eq!(context::current().parent_span_id, request.span_id);
/// });
/// assert_eq!(context::trace_id(), None);
/// ```
pub fn use_span<R>(ctx: SpanContext, f: impl FnOnce() -> R) -> R {
    let _guard = enter(ctx);
    f()
}

/// Captures the current context and returns a closure that runs `f` with
/// it: the explicit handoff of a trace to another thread.
///
/// ```
/// let _span = profilis::span("parent");
/// let trace = profilis::context::trace_id();
/// let worker = std::thread::spawn(profilis::context::bind(move || {
///     assert_eq!(profilis::context::trace_id(), trace);
/// }));
/// worker.join().unwrap();
/// ```
pub fn bind<R>(f: impl FnOnce() -> R) -> impl FnOnce() -> R {
    let ctx = current();
    move || use_span(ctx, f)
}

pin_project_lite::pin_project! {
    /// A future that runs with a trace context: see [`InSpanExt::in_span`].
    #[must_use = "futures do nothing unless polled"]
    pub struct InSpan<F> {
        #[pin]
        inner: F,
        ctx: SpanContext,
    }
}

impl<F> InSpan<F> {
    /// The context the future runs in.
    pub fn context(&self) -> SpanContext {
        self.ctx
    }

    /// The wrapped future.
    pub fn into_inner(self) -> F {
        self.inner
    }
}

impl<F: Future> Future for InSpan<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _guard = enter(*this.ctx);
        this.inner.poll(cx)
    }
}

/// Runs futures in a trace context, on any executor.
///
/// ```
/// use profilis::context::{self, InSpanExt, SpanContext};
/// let ctx = SpanContext::new_root();
/// let task = async move { context::trace_id() }.in_span(ctx);
/// // e.g. tokio::spawn(task): every poll, on whichever worker thread,
/// // runs with `ctx` current.
/// # let _ = task;
/// ```
pub trait InSpanExt: Future + Sized {
    /// Wraps the future so that `ctx` is current while it is polled (and the
    /// previous context restored after each poll). Nested spans started
    /// inside inherit `ctx`'s trace across `.await` points.
    fn in_span(self, ctx: SpanContext) -> InSpan<Self> {
        InSpan { inner: self, ctx }
    }

    /// [`InSpanExt::in_span`] with the context current now: hand the caller's
    /// trace to a spawned task with `tokio::spawn(fut.in_current_span())`.
    fn in_current_span(self) -> InSpan<Self> {
        self.in_span(current())
    }
}

impl<F: Future> InSpanExt for F {}

/// Restores the previous context on drop.
#[must_use = "the context is restored when the guard drops"]
pub struct ContextGuard {
    previous: SpanContext,
}

impl Drop for ContextGuard {
    #[inline]
    fn drop(&mut self) {
        let previous = self.previous;
        CURRENT.with(|c| c.set(previous));
    }
}

fn seed() -> u64 {
    let local = 0u8;
    let addr = &local as *const u8 as u64;
    let mut s = crate::clock::mono_ns() ^ crate::clock::wall_ns().rotate_left(17);
    s ^= (crate::process::tid() as u64) << 32 ^ crate::process::pid() as u64;
    s ^= addr.rotate_left(41);
    s | 1
}

/// Next value of the thread's wyrand generator.
#[inline]
fn next_random() -> u64 {
    RNG.with(|r| {
        let mut state = r.get();
        if state == 0 {
            state = seed();
        }
        state = state.wrapping_add(0xA076_1D64_78BD_642F);
        r.set(state);
        let t = (state as u128).wrapping_mul((state ^ 0xE703_7ED1_A0B4_28DB) as u128);
        (t >> 64) as u64 ^ t as u64
    })
}

/// A new, non-zero span id.
#[inline]
pub fn new_span_id() -> u64 {
    loop {
        let id = next_random();
        if id != 0 {
            return id;
        }
    }
}

/// A new, non-zero trace id.
#[inline]
pub fn new_trace_id() -> u128 {
    loop {
        let id = (next_random() as u128) << 64 | next_random() as u128;
        if id != 0 {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_inherits_trace_and_records_parent() {
        let root = SpanContext::NONE.child();
        assert_ne!(root.trace_id, 0);
        assert_eq!(root.parent_span_id, 0);
        let kid = root.child();
        assert_eq!(kid.trace_id, root.trace_id);
        assert_eq!(kid.parent_span_id, root.span_id);
        assert_ne!(kid.span_id, root.span_id);
    }

    #[test]
    fn enter_restores_previous_context() {
        let a = SpanContext::NONE.child();
        let g = enter(a);
        assert_eq!(current(), a);
        {
            let b = a.child();
            let _g2 = enter(b);
            assert_eq!(current(), b);
        }
        assert_eq!(current(), a);
        drop(g);
        assert_eq!(current(), SpanContext::NONE);
    }

    #[test]
    fn traceparent_round_trip() {
        for _ in 0..100 {
            let ctx = SpanContext::new_root();
            let text = ctx.to_traceparent();
            assert_eq!(text.len(), TRACEPARENT_LEN);
            assert_eq!(SpanContext::from_traceparent(&text), Ok(ctx));
        }
    }

    #[test]
    fn accessors_follow_the_current_context() {
        assert_eq!(trace_id(), None);
        assert_eq!(span_id(), None);
        let ctx = SpanContext::new_root();
        use_span(ctx, || {
            assert_eq!(trace_id(), Some(ctx.trace_id));
            assert_eq!(span_id(), Some(ctx.span_id));
        });
        assert_eq!(trace_id(), None);
    }

    #[test]
    fn bind_hands_the_context_to_another_thread() {
        let ctx = SpanContext::new_root();
        let seen = use_span(ctx, || std::thread::spawn(bind(current)))
            .join()
            .unwrap();
        assert_eq!(seen, ctx);
    }

    #[test]
    fn ids_are_distinct_across_threads() {
        let ids: Vec<u64> = (0..4)
            .map(|_| std::thread::spawn(new_span_id))
            .map(|h| h.join().unwrap())
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
    }
}
