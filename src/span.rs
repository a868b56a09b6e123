//! RAII span guards: time a scope and record it as an FN event.
//!
//! [`Span`] is the synchronous guard: it enters a child context on the
//! current thread for its scope. [`FutureSpan`] times an `async` call: it
//! enters its context only while the future is polled, so it follows the
//! future across `.await` points and threads (the `#[profile]` attribute
//! uses it for `async fn`).
//!
//! A span whose trace was sampled out (`SpanContext::sampled == false`, e.g.
//! a request the tower layer did not keep) records nothing, so a trace is
//! kept or dropped whole.

use crate::clock::{self, Stamp};
use crate::context::{self, SpanContext};
use crate::record::{Kind, MsgRef, StrId, FLAG_ERROR};
use crate::writer::{Fields, Name, Ring};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Times its scope; on drop records an FN event with the elapsed time and
/// restores the previous trace context. While it lives, events recorded on
/// this thread carry its span id. A panic unwinding through the scope marks
/// the event as an error.
#[must_use = "the span ends (and is recorded) when the guard drops"]
pub struct Span<'a> {
    ring: Option<&'a Ring>,
    name: StrId,
    error: bool,
    detail: Detail,
    start: Stamp,
    ctx: SpanContext,
    /// The context current before the span, restored when it ends.
    previous: SpanContext,
}

impl<'a> Span<'a> {
    #[inline]
    pub(crate) fn start(ring: Option<&'a Ring>, name: impl Name) -> Span<'a> {
        let previous = context::current();
        let ctx = previous.child();
        let ring = ring.filter(|_| ctx.sampled);
        let name = ring.map_or(StrId::NONE, |r| name.str_id(r));
        context::set(ctx);
        Span {
            ring,
            name,
            error: false,
            detail: Detail::default(),
            start: clock::now(),
            ctx,
            previous,
        }
    }

    /// Marks the span as failed.
    pub fn set_error(&mut self) {
        self.error = true;
    }

    /// Marks the span as failed with an exception type, a message and,
    /// optionally, a stack trace ("most recent call last"), stored at once
    /// (see [`Ring::message_with_stack`]).
    #[cold]
    pub fn set_exception(&mut self, kind: &str, message: &str, stack: Option<&str>) {
        self.error = true;
        self.detail = Detail::new(self.ring, kind, message, stack);
    }

    /// The span's trace context.
    pub fn context(&self) -> SpanContext {
        self.ctx
    }
}

impl Drop for Span<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(ring) = self.ring {
            let error = self.error || std::thread::panicking();
            record_fn(ring, self.name, self.start, self.ctx, error, self.detail);
        }
        context::set(self.previous);
    }
}

/// The exception type and message of a failed span.
#[derive(Clone, Copy, Default)]
struct Detail {
    exception_type: StrId,
    message: MsgRef,
}

impl Detail {
    #[cold]
    fn new(ring: Option<&Ring>, kind: &str, message: &str, stack: Option<&str>) -> Detail {
        let Some(ring) = ring else {
            return Detail::default();
        };
        Detail {
            exception_type: if kind.is_empty() {
                StrId::NONE
            } else {
                ring.intern(kind)
            },
            message: if message.is_empty() && stack.is_none() {
                MsgRef::default()
            } else {
                ring.message_with_stack(message, stack)
            },
        }
    }
}

#[inline]
fn record_fn(
    ring: &Ring,
    name: StrId,
    start: Stamp,
    ctx: SpanContext,
    error: bool,
    detail: Detail,
) {
    let (dur_ns, ts_mono_ns) = clock::since(start);
    let fields = Fields {
        dur_ns,
        ts_mono_ns,
        flags: if error { FLAG_ERROR } else { 0 },
        exception_type: detail.exception_type,
        message: detail.message,
        span: Some(ctx),
        ..Fields::default()
    };
    ring.record(Kind::Fn, name, &fields);
}

impl Ring {
    /// Starts a span named `name` on this ring.
    pub fn span(&self, name: impl Name) -> Span<'_> {
        Span::start(Some(self), name)
    }

    /// Starts a span for an `async` call on this ring (see [`FutureSpan`]).
    pub fn future_span(&self, name: impl Name) -> FutureSpan<'_> {
        FutureSpan::start(Some(self), name)
    }
}

/// Times an `async` call. Created as a child of the context current at
/// creation, it does not change the thread's context itself: run the call's
/// future through [`FutureSpan::run`], which enters the span's context on
/// every poll and marks the span failed (recording it at once) if a poll
/// panics. Records an FN event when dropped or when [`FutureSpan::finish`]
/// is called, whichever comes first.
///
/// ```
/// # async fn fetch() -> u32 { 7 }
/// # async fn demo() {
/// let mut span = profilis::future_span(profilis::name!("fetch"));
/// let value = span.run(fetch()).await;
/// span.finish();
/// # let _ = value;
/// # }
/// ```
#[must_use = "the span is recorded when it is dropped or finished"]
pub struct FutureSpan<'a> {
    ring: Option<&'a Ring>,
    name: StrId,
    start: Stamp,
    ctx: SpanContext,
    error: bool,
    detail: Detail,
}

impl<'a> FutureSpan<'a> {
    #[inline]
    pub(crate) fn start(ring: Option<&'a Ring>, name: impl Name) -> FutureSpan<'a> {
        let ctx = context::current().child();
        let ring = ring.filter(|_| ctx.sampled);
        let name = ring.map_or(StrId::NONE, |r| name.str_id(r));
        FutureSpan {
            ring,
            name,
            start: clock::now(),
            ctx,
            error: false,
            detail: Detail::default(),
        }
    }

    /// The span's trace context.
    pub fn context(&self) -> SpanContext {
        self.ctx
    }

    /// Marks the span as failed.
    pub fn set_error(&mut self) {
        self.error = true;
    }

    /// Marks the span as failed with an exception type, a message and,
    /// optionally, a stack trace, as [`Span::set_exception`] does.
    #[cold]
    pub fn set_exception(&mut self, kind: &str, message: &str, stack: Option<&str>) {
        self.error = true;
        self.detail = Detail::new(self.ring, kind, message, stack);
    }

    /// Polls `future` inside this span's context.
    pub fn run<F: Future>(&mut self, future: F) -> RunInSpan<'_, 'a, F> {
        RunInSpan {
            inner: future,
            span: self,
        }
    }

    /// Records the span now.
    pub fn finish(mut self) {
        self.record();
    }

    fn record(&mut self) {
        if let Some(ring) = self.ring.take() {
            record_fn(
                ring,
                self.name,
                self.start,
                self.ctx,
                self.error,
                self.detail,
            );
        }
    }
}

impl Drop for FutureSpan<'_> {
    fn drop(&mut self) {
        self.record();
    }
}

pin_project_lite::pin_project! {
    /// A future polled inside a [`FutureSpan`]'s context; see
    /// [`FutureSpan::run`].
    #[must_use = "futures do nothing unless polled"]
    pub struct RunInSpan<'s, 'a, F> {
        #[pin]
        inner: F,
        span: &'s mut FutureSpan<'a>,
    }
}

/// Marks and records the span when a poll unwinds: the future's own locals
/// are not dropped by the unwind (they live in the future), so this guard on
/// the poll's stack frame is what sees the panic.
struct PanicMark<'s, 'a>(&'s mut FutureSpan<'a>);

impl Drop for PanicMark<'_, '_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.error = true;
            self.0.record();
        }
    }
}

impl<F: Future> Future for RunInSpan<'_, '_, F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _ctx = context::enter(this.span.ctx);
        let _mark = PanicMark(this.span);
        this.inner.poll(cx)
    }
}
