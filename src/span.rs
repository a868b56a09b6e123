//! RAII span guards: time a scope and record it as an FN event.

use crate::clock;
use crate::context::{self, ContextGuard, SpanContext};
use crate::record::{Kind, StrId, FLAG_ERROR};
use crate::writer::{Fields, Name, Ring};

/// Times its scope; on drop records an FN event with the elapsed time and
/// restores the previous trace context. While it lives, events recorded on
/// this thread carry its span id.
#[must_use = "the span ends (and is recorded) when the guard drops"]
pub struct Span<'a> {
    ring: Option<&'a Ring>,
    name: StrId,
    start_ns: u64,
    ctx: SpanContext,
    error: bool,
    _enter: ContextGuard,
}

impl<'a> Span<'a> {
    pub(crate) fn start(ring: Option<&'a Ring>, name: impl Name) -> Span<'a> {
        let name = ring.map_or(StrId::NONE, |r| name.str_id(r));
        let ctx = context::current().child();
        let enter = context::enter(ctx);
        Span {
            ring,
            name,
            start_ns: clock::mono_ns(),
            ctx,
            error: false,
            _enter: enter,
        }
    }

    /// Marks the span as failed.
    pub fn set_error(&mut self) {
        self.error = true;
    }

    /// The span's trace context.
    pub fn context(&self) -> SpanContext {
        self.ctx
    }
}

impl Drop for Span<'_> {
    fn drop(&mut self) {
        let Some(ring) = self.ring else { return };
        let end = clock::mono_ns();
        let fields = Fields {
            dur_ns: end.saturating_sub(self.start_ns),
            ts_mono_ns: end,
            flags: if self.error || std::thread::panicking() {
                FLAG_ERROR
            } else {
                0
            },
            span: Some(self.ctx),
            ..Fields::default()
        };
        ring.record(Kind::Fn, self.name, &fields);
    }
}

impl Ring {
    /// Starts a span named `name` on this ring.
    pub fn span(&self, name: impl Name) -> Span<'_> {
        Span::start(Some(self), name)
    }
}
