//! Runtime trace context: which trace and span the current thread is in.
//!
//! Every event carries the current trace id and span id. Ids come from a
//! per-thread generator (no syscall, no lock). A [`Span`](crate::Span) guard
//! enters a child context for its scope; [`enter`] sets one explicitly, for
//! example to continue a trace received from another thread or process.

use std::cell::Cell;

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

    /// A child of `self`: same trace (a new one if `self` has none), a new
    /// span id, `self`'s span as parent.
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

thread_local! {
    static CURRENT: Cell<SpanContext> = const { Cell::new(SpanContext::NONE) };
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// The current thread's context.
#[inline]
pub fn current() -> SpanContext {
    CURRENT.with(|c| c.get())
}

/// Makes `ctx` current until the returned guard drops, which restores the
/// previous context.
pub fn enter(ctx: SpanContext) -> ContextGuard {
    let previous = CURRENT.with(|c| c.replace(ctx));
    ContextGuard { previous }
}

/// Restores the previous context on drop.
#[must_use = "the context is restored when the guard drops"]
pub struct ContextGuard {
    previous: SpanContext,
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        let previous = self.previous;
        let _ = CURRENT.try_with(|c| c.set(previous));
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
