//! The `tracing` layer: closed spans become FN events with their duration,
//! parentage and mapped fields.

mod common;

use common::collector;
use profilis::context::{self, SpanContext};
use profilis::record::FLAG_ERROR;
use profilis::Kind;
use tracing_subscriber::prelude::*;

#[tracing::instrument]
fn instrumented(n: u32) -> u32 {
    n + 1
}

#[tracing::instrument(fields(status, error))]
fn fails_with_status() {
    tracing::Span::current().record("status", 503u64);
}

#[test]
fn spans_become_fn_events_with_parentage_and_fields() {
    collector();
    let subscriber = tracing_subscriber::registry().with(profilis::tracing::ProfilisLayer::new());
    let root = SpanContext::new_root();
    let (inside_outer, inside_inner) = tracing::subscriber::with_default(subscriber, || {
        context::use_span(root, || {
            let outer = tracing::info_span!("outer", status = 200u64);
            let _outer = outer.enter();
            let inside_outer = context::current();
            let inside_inner = {
                let inner = tracing::info_span!("inner", name = "renamed.inner", error = true);
                let _inner = inner.enter();
                let inside = context::current();
                // Profilis spans inside a tracing span are its children.
                drop(profilis::span("tr.nested"));
                inside
            };
            assert_eq!(instrumented(1), 2);
            fails_with_status();
            let failing =
                tracing::info_span!("failing", exception = "ValueError", error = %"bad input");
            drop(failing.enter());
            let detached = tracing::info_span!(parent: None, "detached");
            drop(detached);
            (inside_outer, inside_inner)
        })
    });
    assert_eq!(context::current(), SpanContext::NONE, "context restored");

    let events = collector().wait_for(6, |r| r.event.trace_id == root.trace_id);
    let find = |name: &str| {
        events
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no event {name}: {events:#?}"))
    };
    let outer = find("tracing_layer::outer");
    assert_eq!(outer.event.kind, Kind::Fn);
    assert_eq!(
        outer.event.parent_span_id, root.span_id,
        "a contextual root continues the Profilis trace"
    );
    assert_eq!(outer.event.span_id, inside_outer.span_id);
    assert_eq!(outer.event.status, 200);
    assert_eq!(outer.event.flags & FLAG_ERROR, 0);
    assert!(outer.event.dur_ns > 0);

    let inner = find("renamed.inner");
    assert_eq!(inner.event.parent_span_id, outer.event.span_id);
    assert_eq!(inner.event.span_id, inside_inner.span_id);
    assert_eq!(inner.event.flags & FLAG_ERROR, FLAG_ERROR);
    assert!(outer.event.dur_ns >= inner.event.dur_ns);

    let nested = find("tr.nested");
    assert_eq!(nested.event.parent_span_id, inner.event.span_id);

    let instrumented = find("tracing_layer::instrumented");
    assert_eq!(instrumented.event.parent_span_id, outer.event.span_id);

    let with_status = find("tracing_layer::fails_with_status");
    assert_eq!(with_status.event.status, 503);
    assert_eq!(with_status.event.flags & FLAG_ERROR, FLAG_ERROR);

    let failing = find("tracing_layer::failing");
    assert_eq!(failing.event.flags & FLAG_ERROR, FLAG_ERROR);
    assert_eq!(failing.exception_type.as_deref(), Some("ValueError"));
    assert_eq!(failing.message.as_deref(), Some("bad input"));

    // An explicit root starts its own trace.
    let detached = collector().wait_for(1, |r| r.name == "tracing_layer::detached");
    assert_ne!(detached[0].event.trace_id, root.trace_id);
    assert_eq!(detached[0].event.parent_span_id, 0);
}

#[test]
fn spans_of_sampled_out_traces_record_nothing() {
    collector();
    let subscriber = tracing_subscriber::registry().with(profilis::tracing::ProfilisLayer::new());
    let mut dropped = SpanContext::new_root();
    dropped.sampled = false;
    tracing::subscriber::with_default(subscriber, || {
        context::use_span(dropped, || {
            let span = tracing::info_span!("unsampled");
            let _e = span.enter();
        });
        let marker = tracing::info_span!("sampled.marker");
        drop(marker);
    });
    collector().wait_for(1, |r| r.name == "tracing_layer::sampled.marker");
    assert!(collector()
        .matching(|r| r.name == "tracing_layer::unsampled")
        .is_empty());
}
