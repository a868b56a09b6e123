//! `#[profile]`: timed FN events for sync and async functions, error flags,
//! panics, name overrides, span nesting. The compile tests are in
//! macros/tests/ui.rs.

mod common;

use common::collector;
use profilis::context::{self, InSpanExt, SpanContext};
use profilis::record::FLAG_ERROR;
use profilis::{profile, Kind};

#[derive(Debug)]
struct Oops;

#[profile]
fn parse_number(text: &str) -> Result<u32, std::num::ParseIntError> {
    let n: u32 = text.trim().parse()?;
    Ok(n * 2)
}

#[profile(name = "custom.checkout")]
fn checkout(total: u32) -> u32 {
    if total > 100 {
        return total - 10;
    }
    total
}

#[profile]
fn explode(really: bool) -> u32 {
    if really {
        panic!("boom");
    }
    1
}

#[profile]
fn outer_sync() -> SpanContext {
    inner_sync()
}

#[profile]
fn inner_sync() -> SpanContext {
    context::current()
}

struct Store {
    items: Vec<u32>,
}

impl Store {
    #[profile]
    fn first(&self) -> Option<&u32> {
        self.items.first()
    }

    #[profile]
    fn push(&mut self, item: u32) -> Result<usize, Oops> {
        if item == 0 {
            return Err(Oops);
        }
        self.items.push(item);
        Ok(self.items.len())
    }

    #[profile]
    fn evens(&self) -> impl Iterator<Item = &u32> + '_ {
        self.items.iter().filter(|n| *n % 2 == 0)
    }
}

#[profile]
fn generic<T: Clone + std::fmt::Debug>(value: &T) -> Result<T, String> {
    Ok(value.clone())
}

#[profile]
async fn fetch(id: u32) -> Result<u32, Oops> {
    tokio::task::yield_now().await;
    if id == 0 {
        Err(Oops)?;
    }
    Ok(nested_async(id).await)
}

#[profile]
async fn nested_async(id: u32) -> u32 {
    tokio::task::yield_now().await;
    id + 1
}

#[profile]
async fn async_context() -> SpanContext {
    tokio::task::yield_now().await;
    context::current()
}

#[profile]
async fn async_panics() -> u32 {
    tokio::task::yield_now().await;
    panic!("async boom")
}

#[profile(backtrace)]
fn load_config(path: &str) -> Result<u32, std::num::ParseIntError> {
    read_number(path)
}

#[profile]
fn parse_port(text: &str) -> Result<u16, std::num::ParseIntError> {
    text.parse()
}

#[inline(never)]
fn read_number(text: &str) -> Result<u32, std::num::ParseIntError> {
    text.parse()
}

#[profile(backtrace)]
async fn fetch_traced(id: u32) -> Result<u32, Oops> {
    tokio::task::yield_now().await;
    if id == 0 {
        return Err(Oops);
    }
    Ok(id)
}

fn named(name: &str) -> Vec<common::Rec> {
    collector().matching(|r| r.event.kind == Kind::Fn && r.name == name)
}

#[test]
fn errors_carry_their_type_message_and_with_backtrace_the_stack() {
    collector();
    assert!(load_config("12x").is_err());
    assert!(parse_port("y").is_err());
    let failed = collector().wait_for(1, |r| r.name == "profile_macro::load_config");
    let failed = &failed[0];
    assert_eq!(failed.event.flags & FLAG_ERROR, FLAG_ERROR);
    assert_eq!(
        (failed.exception_type.as_deref(), failed.message.as_deref()),
        (
            Some("core::num::error::ParseIntError"),
            Some("invalid digit found in string")
        )
    );
    // Captured where the function returns its error: the test that called
    // it, then the function itself, innermost last.
    let stack = failed.stack.as_deref().expect("a backtrace");
    assert!(stack.starts_with(profilis::backtrace::HEADER), "{stack}");
    let test = stack
        .find("errors_carry_their_type_message_and_with_backtrace_the_stack")
        .expect("the caller's frame");
    let function = stack.rfind("profile_macro::load_config").unwrap();
    assert!(test < function, "{stack}");
    assert!(!stack.contains("Backtrace::force_capture"), "{stack}");

    // Without `backtrace`: type and message, no stack.
    let plain = collector().wait_for(1, |r| r.name == "profile_macro::parse_port");
    assert_eq!(
        plain[0].message.as_deref(),
        Some("invalid digit found in string")
    );
    assert_eq!(plain[0].stack, None);

    // An async function, and an error type without `Display`.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert!(rt.block_on(fetch_traced(0)).is_err());
    let failed = collector().wait_for(1, |r| r.name == "profile_macro::fetch_traced");
    assert_eq!(
        failed[0].exception_type.as_deref(),
        Some("profile_macro::Oops")
    );
    assert_eq!(failed[0].message.as_deref(), Some(""));
    assert!(failed[0].stack.as_deref().unwrap().contains("fetch_traced"));
}

#[test]
fn sync_functions_are_timed_with_their_module_path_and_errors() {
    collector();
    assert_eq!(parse_number(" 21 ").unwrap(), 42);
    assert!(parse_number("x").is_err());
    assert_eq!(checkout(200), 190);
    let events = collector().wait_for(2, |r| r.name == "profile_macro::parse_number");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event.flags & FLAG_ERROR, 0);
    assert_eq!(events[1].event.flags & FLAG_ERROR, FLAG_ERROR);
    assert!(events
        .iter()
        .all(|r| r.event.trace_id != 0 && r.event.span_id != 0));
    let custom = collector().wait_for(1, |r| r.name == "custom.checkout");
    assert_eq!(custom.len(), 1);
    assert_eq!(custom[0].event.flags & FLAG_ERROR, 0);
}

#[test]
fn a_panic_propagates_and_is_recorded_as_an_error() {
    collector();
    assert_eq!(explode(false), 1);
    let caught = std::panic::catch_unwind(|| explode(true));
    assert!(caught.is_err(), "the panic must propagate");
    let events = collector().wait_for(2, |r| r.name == "profile_macro::explode");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event.flags & FLAG_ERROR, 0);
    assert_eq!(events[1].event.flags & FLAG_ERROR, FLAG_ERROR);
}

#[test]
fn nested_calls_form_a_trace() {
    collector();
    let root = SpanContext::new_root();
    let inner_ctx = context::use_span(root, outer_sync);
    let outer = collector().wait_for(1, |r| {
        r.name == "profile_macro::outer_sync" && r.event.trace_id == root.trace_id
    });
    let inner = collector().wait_for(1, |r| {
        r.name == "profile_macro::inner_sync" && r.event.trace_id == root.trace_id
    });
    assert_eq!(outer[0].event.parent_span_id, root.span_id);
    assert_eq!(inner[0].event.parent_span_id, outer[0].event.span_id);
    assert_eq!(inner[0].event.span_id, inner_ctx.span_id);
    // The context is restored after the call.
    assert_eq!(context::current(), SpanContext::NONE);
}

#[test]
fn methods_generics_and_impl_trait_returns() {
    collector();
    let mut store = Store { items: vec![] };
    assert_eq!(store.first(), None);
    assert_eq!(store.push(4).unwrap(), 1);
    assert!(store.push(0).is_err());
    assert_eq!(store.evens().count(), 1);
    assert_eq!(generic(&"x".to_string()).unwrap(), "x");
    let push = collector().wait_for(2, |r| r.name == "profile_macro::push");
    assert_eq!(push.len(), 2);
    assert_eq!(push[1].event.flags & FLAG_ERROR, FLAG_ERROR);
    assert_eq!(named("profile_macro::first").len(), 1);
    assert_eq!(named("profile_macro::evens").len(), 1);
    assert_eq!(named("profile_macro::generic").len(), 1);
}

#[test]
fn async_functions_on_a_multi_threaded_runtime() {
    collector();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let roots: Vec<SpanContext> = (0..16).map(|_| SpanContext::new_root()).collect();
    let results: Vec<(SpanContext, Result<u32, Oops>, SpanContext)> = runtime.block_on(async {
        let tasks: Vec<_> = roots
            .iter()
            .enumerate()
            .map(|(i, root)| {
                let root = *root;
                tokio::spawn(
                    async move {
                        let seen = async_context().await;
                        (root, fetch(i as u32).await, seen)
                    }
                    .in_span(root),
                )
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    for (i, (root, result, seen)) in results.iter().enumerate() {
        assert_eq!(result.is_err(), i == 0);
        assert_eq!(seen.trace_id, root.trace_id, "the span follows the task");
        assert_eq!(seen.parent_span_id, root.span_id);
    }
    for (i, root) in roots.iter().enumerate() {
        let fetch = collector().wait_for(1, |r| {
            r.name == "profile_macro::fetch" && r.event.trace_id == root.trace_id
        });
        assert_eq!(fetch.len(), 1, "one fetch event per trace");
        assert_eq!(fetch[0].event.parent_span_id, root.span_id);
        assert_eq!(fetch[0].event.flags & FLAG_ERROR != 0, i == 0);
        if i > 0 {
            let nested = collector().wait_for(1, |r| {
                r.name == "profile_macro::nested_async" && r.event.trace_id == root.trace_id
            });
            assert_eq!(nested.len(), 1);
            assert_eq!(nested[0].event.parent_span_id, fetch[0].event.span_id);
        }
    }

    // A panicking async fn: the panic reaches the JoinHandle, the event is
    // an error.
    let joined = runtime.block_on(runtime.spawn(async_panics().in_span(roots[1])));
    assert!(joined.unwrap_err().is_panic());
    let panicked = collector().wait_for(1, |r| r.name == "profile_macro::async_panics");
    assert_eq!(panicked.len(), 1);
    assert_eq!(panicked[0].event.flags & FLAG_ERROR, FLAG_ERROR);
    assert_eq!(panicked[0].event.trace_id, roots[1].trace_id);
}
