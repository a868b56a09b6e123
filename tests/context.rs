//! The runtime context: nested spans, propagation across threads and tokio
//! tasks, and W3C traceparent parsing.

mod common;

use common::collector;
use profilis::context::{self, InSpanExt, SpanContext, TraceparentError};
use profilis::Kind;

#[test]
fn nested_spans_share_the_trace_and_record_their_parent() {
    collector();
    let (outer_ctx, inner_ctx) = {
        let outer = profilis::span("ctx.outer");
        let inner_ctx = {
            let inner = profilis::span("ctx.inner");
            assert_eq!(context::span_id(), Some(inner.context().span_id));
            inner.context()
        };
        assert_eq!(context::span_id(), Some(outer.context().span_id));
        (outer.context(), inner_ctx)
    };
    assert_eq!(context::current(), SpanContext::NONE);
    assert_eq!(inner_ctx.trace_id, outer_ctx.trace_id);
    assert_eq!(inner_ctx.parent_span_id, outer_ctx.span_id);
    assert_eq!(outer_ctx.parent_span_id, 0);

    let events = collector().wait_for(2, |r| r.event.trace_id == outer_ctx.trace_id);
    let inner = events.iter().find(|r| r.name == "ctx.inner").unwrap();
    let outer = events.iter().find(|r| r.name == "ctx.outer").unwrap();
    assert_eq!(inner.event.kind, Kind::Fn);
    assert_eq!(inner.event.span_id, inner_ctx.span_id);
    assert_eq!(inner.event.parent_span_id, outer.event.span_id);
    // Raw emits inside a span carry the span's ids.
    let ctx = SpanContext::new_root();
    context::use_span(ctx, || profilis::emit_custom("ctx.custom", 1.5));
    let custom = collector().wait_for(1, |r| r.name == "ctx.custom");
    assert_eq!(
        (custom[0].event.trace_id, custom[0].event.span_id),
        (ctx.trace_id, ctx.span_id)
    );
}

#[test]
fn explicit_handoff_to_threads() {
    collector();
    let root = SpanContext::new_root();
    let workers: Vec<_> = context::use_span(root, || {
        (0..4)
            .map(|i| {
                std::thread::spawn(context::bind(move || {
                    let span = profilis::span(if i % 2 == 0 { "ctx.even" } else { "ctx.odd" });
                    span.context()
                }))
            })
            .collect()
    });
    for w in workers {
        let ctx = w.join().unwrap();
        assert_eq!(ctx.trace_id, root.trace_id);
        assert_eq!(ctx.parent_span_id, root.span_id);
    }
    let events = collector().wait_for(4, |r| r.event.trace_id == root.trace_id);
    assert_eq!(events.len(), 4);
}

#[test]
fn concurrent_tasks_on_a_multi_threaded_runtime_keep_separate_traces() {
    collector();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    let tasks = 64;
    let roots: Vec<SpanContext> = (0..tasks).map(|_| SpanContext::new_root()).collect();
    let seen: Vec<Vec<SpanContext>> = runtime.block_on(async {
        let handles: Vec<_> = roots
            .iter()
            .map(|&root| {
                tokio::spawn(
                    async move {
                        let mut seen = Vec::new();
                        for step in 0..20u32 {
                            // Yield so tasks interleave and migrate between
                            // worker threads (work stealing).
                            tokio::task::yield_now().await;
                            seen.push(context::current());
                            let span = profilis::span("ctx.step");
                            assert_eq!(span.context().trace_id, root.trace_id);
                            drop(span);
                            if step % 5 == 0 {
                                // A nested spawn inherits the trace with the
                                // adapter.
                                let child =
                                    tokio::spawn(async { context::current() }.in_current_span())
                                        .await
                                        .unwrap();
                                seen.push(child);
                            }
                        }
                        seen
                    }
                    .in_span(root),
                )
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.push(h.await.unwrap());
        }
        all
    });
    for (root, seen) in roots.iter().zip(&seen) {
        assert_eq!(seen.len(), 24);
        assert!(
            seen.iter().all(|c| c == root),
            "a task saw another task's context"
        );
    }
    // Outside the tasks, the worker threads' context was restored.
    let leaked = runtime.block_on(async {
        let mut out = Vec::new();
        for _ in 0..8 {
            out.push(tokio::spawn(async { context::current() }).await.unwrap());
        }
        out
    });
    assert!(leaked.iter().all(|c| *c == SpanContext::NONE));
    for root in &roots {
        let events = collector().wait_for(20, |r| r.event.trace_id == root.trace_id);
        assert_eq!(events.len(), 20);
        assert!(events
            .iter()
            .all(|r| r.event.parent_span_id == root.span_id));
    }
}

#[test]
fn the_context_does_not_leak_into_tasks_without_the_adapter() {
    // InSpan restores the thread's context after every poll, so a task
    // spawned without the adapter, even one polled on the same thread,
    // never sees its spawner's context.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let root = SpanContext::new_root();
    let seen = runtime.block_on(
        async {
            assert_eq!(context::current(), root);
            tokio::spawn(async { context::current() }).await.unwrap()
        }
        .in_span(root),
    );
    assert_eq!(seen, SpanContext::NONE);
}

#[test]
fn traceparent_round_trip() {
    let header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let ctx = SpanContext::from_traceparent(header).unwrap();
    assert_eq!(ctx.trace_id, 0x0af7651916cd43dd8448eb211c80319c);
    assert_eq!(ctx.span_id, 0xb7ad6b7169203331);
    assert!(ctx.sampled);
    assert_eq!(ctx.to_traceparent(), header);
    let unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    let ctx = SpanContext::from_traceparent(unsampled).unwrap();
    assert!(!ctx.sampled);
    assert_eq!(ctx.to_traceparent(), unsampled);
    // A continued trace: same trace id, the remote span as parent.
    let child = ctx.child();
    assert_eq!(
        (child.trace_id, child.parent_span_id),
        (ctx.trace_id, ctx.span_id)
    );
}

#[test]
fn traceparent_rejection_and_future_versions() {
    use TraceparentError::*;
    let valid_tail = "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let cases: &[(&str, Result<(), TraceparentError>)] = &[
        // Wrong lengths.
        ("", Err(Length(0))),
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0",
            Err(Length(54)),
        ),
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-",
            Err(Length(56)),
        ),
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            Err(Length(61)),
        ),
        (
            "00-0af7651916cd43dd8448eb211c80319c0-b7ad6b7169203331-01",
            Err(Separator),
        ),
        // Upper-case hex.
        (
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            Err(NotHex),
        ),
        (
            "00-0af7651916cd43dd8448eb211c80319c-B7AD6B7169203331-01",
            Err(NotHex),
        ),
        (
            "0A-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            Err(NotHex),
        ),
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0F",
            Err(NotHex),
        ),
        // Not hex at all.
        (
            "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
            Err(NotHex),
        ),
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333 -01",
            Err(NotHex),
        ),
        (
            "zz-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            Err(NotHex),
        ),
        // Version ff is forbidden.
        (
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            Err(Version),
        ),
        // All-zero ids.
        (
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            Err(ZeroTraceId),
        ),
        (
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            Err(ZeroParentId),
        ),
        // Bad separators.
        (
            "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            Err(Separator),
        ),
        (
            "00-0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331-01",
            Err(Separator),
        ),
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331_01",
            Err(Separator),
        ),
        // Surrounding whitespace is not trimmed.
        (
            " 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            Err(NotHex),
        ),
        // Future versions: longer values are accepted when the 56th byte is
        // '-', and the known fields are read as version 00's.
        (
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            Ok(()),
        ),
        (
            "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-the-future-holds",
            Ok(()),
        ),
        (
            "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x",
            Err(Length(56)),
        ),
        // Unknown flag bits are carried without complaint.
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-ff",
            Ok(()),
        ),
    ];
    for (header, expected) in cases {
        let got = SpanContext::from_traceparent(header).map(|ctx| {
            assert_eq!(ctx.trace_id, 0x0af7651916cd43dd8448eb211c80319c);
            assert_eq!(ctx.span_id, 0xb7ad6b7169203331);
        });
        assert_eq!(&got, expected, "{header:?}");
    }
    assert!(SpanContext::from_traceparent(&format!("00-{valid_tail}")).is_ok());
}
