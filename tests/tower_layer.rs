//! The tower layer over a real axum server and a real HTTP client, writing
//! into a real ring file read back with `profilis::Consumer`.

mod common;

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use axum::{Extension, Router};
use common::{collector, Rec};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use profilis::record::{FLAG_ERROR, FLAG_SAMPLED};
use profilis::tower::{Exception, ProfilisLayer, TRACEPARENT, UNMATCHED};
use profilis::{db, Kind, Method, SpanContext};
use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::ServiceExt;

#[profilis::profile]
fn load_user(id: u32) -> Result<String, String> {
    let rows: Result<Vec<u32>, String> =
        db::timed("SELECT name FROM users WHERE id = 1", || Ok(vec![id]));
    rows?;
    Ok(format!("user-{id}"))
}

/// A response body that arrives in several frames, then ends, or fails if
/// `fail`.
struct Chunks {
    frames: VecDeque<Bytes>,
    fail: bool,
}

#[derive(Debug)]
struct BrokenPipe;

impl std::fmt::Display for BrokenPipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("broken pipe")
    }
}

impl std::error::Error for BrokenPipe {}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = BrokenPipe;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BrokenPipe>>> {
        match self.frames.pop_front() {
            Some(b) => Poll::Ready(Some(Ok(http_body::Frame::data(b)))),
            None if self.fail => Poll::Ready(Some(Err(BrokenPipe))),
            None => Poll::Ready(None),
        }
    }
}

/// A streaming body of `frames`.
fn chunks(frames: &[&'static str], fail: bool) -> Body {
    Body::new(Chunks {
        frames: frames.iter().map(|f| Bytes::from(*f)).collect(),
        fail,
    })
}

fn app(prefix: &str, layer: ProfilisLayer) -> Router {
    Router::new()
        .route(
            &format!("{prefix}/users/{{id}}"),
            get(|Path(id): Path<u32>| async move { load_user(id).unwrap_or_default() }),
        )
        .route(
            &format!("{prefix}/echo"),
            post(|body: Bytes| async move { body }),
        )
        .route(
            &format!("{prefix}/fail"),
            get(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Extension(Exception::new("DbTimeout", "pool exhausted after 5s")),
                    "unavailable",
                )
            }),
        )
        .route(
            &format!("{prefix}/plain500"),
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .route(
            &format!("{prefix}/panic"),
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("handler exploded");
                }
                "unreachable"
            }),
        )
        .route(
            &format!("{prefix}/stream"),
            get(|| async { chunks(&["abc", "defgh", "ij"], false) }),
        )
        .route("/health", get(|| async { "ok" }))
        .route("/static/{*path}", get(|| async { "asset" }))
        .layer(layer)
}

fn traceparent(trace_id: u128, parent: u64) -> String {
    format!("00-{trace_id:032x}-{parent:016x}-01")
}

fn req_events(trace_id: u128) -> Vec<Rec> {
    collector().wait_for(1, |r| {
        r.event.kind == Kind::Req && r.event.trace_id == trace_id
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_server_records_routes_statuses_bytes_errors_and_traces() {
    collector();
    let layer = ProfilisLayer::new()
        .exclude_routes(["/health", "/static/*"])
        .propagate(true)
        .catch_panics(true);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, app("/t1", layer)).await.unwrap();
    });
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();

    // Each request carries its own trace, so its events can be told apart.
    let mut traces = HashMap::new();
    let mut send = |method: &str, path: &str, body: &'static [u8]| {
        let ctx = SpanContext::new_root();
        traces.insert(path.to_string(), ctx);
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"))
            .header("traceparent", traceparent(ctx.trace_id, ctx.span_id))
            .body(Full::new(Bytes::from_static(body)))
            .unwrap();
        let client = client.clone();
        async move {
            let response = client.request(request).await.unwrap();
            let status = response.status();
            let header = response
                .headers()
                .get(&TRACEPARENT)
                .map(|v| v.to_str().unwrap().to_string());
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, header, body)
        }
    };

    let (status, header, body) = send("GET", "/t1/users/7", b"").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"user-7");
    let echo_body: &'static [u8] = &[b'x'; 1234];
    let (status, _, body) = send("POST", "/t1/echo", echo_body).await;
    assert_eq!((status, body.len()), (StatusCode::OK, 1234));
    assert_eq!(
        send("GET", "/t1/fail", b"").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        send("GET", "/t1/plain500", b"").await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let (status, panic_header, _) = send("GET", "/t1/panic", b"").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(panic_header.is_some());
    let (status, _, body) = send("GET", "/t1/stream", b"").await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"abcdefghij"[..]));
    assert_eq!(
        send("GET", "/t1/no/such/route", b"").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(send("GET", "/health", b"").await.0, StatusCode::OK);
    assert_eq!(send("GET", "/static/app.js", b"").await.0, StatusCode::OK);

    // traceparent on the response: same trace, the request's span.
    let user_ctx = traces["/t1/users/7"];
    let user = req_events(user_ctx.trace_id);
    assert_eq!(user.len(), 1);
    let u = &user[0];
    assert_eq!(u.name, "/t1/users/{id}");
    assert_eq!((u.event.method, u.event.status), (Method::Get, 200));
    assert_eq!(
        u.event.parent_span_id, user_ctx.span_id,
        "parent from traceparent"
    );
    assert_eq!(u.event.flags & FLAG_ERROR, 0);
    assert_eq!(u.event.flags & FLAG_SAMPLED, FLAG_SAMPLED);
    assert_eq!(u.event.value2, 6, "bytes out");
    assert!(u.event.dur_ns > 0);
    let returned =
        SpanContext::from_traceparent(&header.expect("traceparent on the response")).unwrap();
    assert_eq!(
        (returned.trace_id, returned.span_id),
        (user_ctx.trace_id, u.event.span_id)
    );

    // Nested #[profile] and DB events inherit the request's trace.
    let nested = collector().wait_for(2, |r| {
        r.event.trace_id == user_ctx.trace_id && r.event.kind != Kind::Req
    });
    let f = nested
        .iter()
        .find(|r| r.event.kind == Kind::Fn)
        .expect("FN event");
    let d = nested
        .iter()
        .find(|r| r.event.kind == Kind::Db)
        .expect("DB event");
    assert_eq!(f.name, "tower_layer::load_user");
    assert_eq!(f.event.parent_span_id, u.event.span_id);
    assert_eq!(d.name, "SELECT name FROM users WHERE id = ?");
    assert_eq!(d.event.parent_span_id, f.event.span_id);
    assert_eq!(d.event.value, 1, "rows");

    let echo = &req_events(traces["/t1/echo"].trace_id)[0];
    assert_eq!(
        (echo.name.as_str(), echo.event.method),
        ("/t1/echo", Method::Post)
    );
    assert_eq!(
        (echo.event.value, echo.event.value2),
        (1234, 1234),
        "bytes in/out"
    );

    let fail = &req_events(traces["/t1/fail"].trace_id)[0];
    assert_eq!(fail.event.status, 503);
    assert_eq!(fail.event.flags & FLAG_ERROR, FLAG_ERROR);
    assert_eq!(fail.exception_type.as_deref(), Some("DbTimeout"));
    // Redacted in the writer: `5s` holds a digit.
    assert_eq!(fail.message.as_deref(), Some("pool exhausted after ?"));

    let plain = &req_events(traces["/t1/plain500"].trace_id)[0];
    assert_eq!(plain.event.flags & FLAG_ERROR, FLAG_ERROR);
    assert_eq!(
        plain.exception_type.as_deref(),
        Some("HTTP 500 Internal Server Error")
    );

    let panicked = &req_events(traces["/t1/panic"].trace_id)[0];
    assert_eq!(
        (panicked.name.as_str(), panicked.event.status),
        ("/t1/panic", 500)
    );
    assert_eq!(panicked.event.flags & FLAG_ERROR, FLAG_ERROR);
    assert_eq!(panicked.exception_type.as_deref(), Some("panic"));
    assert_eq!(panicked.message.as_deref(), Some("handler exploded"));

    let stream = &req_events(traces["/t1/stream"].trace_id)[0];
    assert_eq!(stream.event.value2, 10, "bytes counted across frames");

    let unmatched = &req_events(traces["/t1/no/such/route"].trace_id)[0];
    assert_eq!(
        (unmatched.name.as_str(), unmatched.event.status),
        (UNMATCHED, 404)
    );
    assert_eq!(unmatched.event.flags & FLAG_ERROR, 0);

    // Excluded routes leave no event. The requests after them were
    // recorded, so theirs would have been by now.
    let last = SpanContext::new_root();
    let request = Request::builder()
        .uri(format!("http://{addr}/t1/users/1"))
        .header("traceparent", traceparent(last.trace_id, last.span_id))
        .body(Full::new(Bytes::new()))
        .unwrap();
    client
        .request(request)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap();
    req_events(last.trace_id);
    for path in ["/health", "/static/app.js"] {
        let trace = traces[path].trace_id;
        assert!(
            collector()
                .matching(|r| r.event.trace_id == trace)
                .is_empty(),
            "{path} was recorded"
        );
    }
    assert!(collector()
        .matching(|r| r.name == "/health" || r.name.starts_with("/static"))
        .is_empty());
    server.abort();
}

#[tokio::test]
async fn sampling_keeps_the_rate_and_whole_traces() {
    collector();
    let app = app("/t2", ProfilisLayer::new().sample(0.1));
    let total = 10_000;
    for i in 0..total {
        let request = Request::get(format!("/t2/users/{i}"))
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    // oneshot drops each response (and so records its event) before the
    // next request: every event is in the ring now.
    let kept = collector().matching(|r| r.event.kind == Kind::Req && r.name == "/t2/users/{id}");
    // Binomial(10000, 0.1): mean 1000, sd 30; 6 sd either side.
    assert!(
        (820..=1180).contains(&kept.len()),
        "kept {} of {total}",
        kept.len()
    );

    // Everything inside a dropped request is dropped with it, and
    // everything inside a kept one is kept.
    let kept_traces: std::collections::HashSet<u128> =
        kept.iter().map(|r| r.event.trace_id).collect();
    let fns = collector().matching(|r| r.name == "tower_layer::load_user");
    let in_t2: Vec<_> = fns
        .iter()
        .filter(|r| kept_traces.contains(&r.event.trace_id))
        .collect();
    assert_eq!(in_t2.len(), kept.len());

    // The decision is per trace: 30 traces sent 10 times each are kept or
    // dropped whole.
    let traces: Vec<SpanContext> = (0..30).map(|_| SpanContext::new_root()).collect();
    for round in 0..10 {
        for (i, ctx) in traces.iter().enumerate() {
            let request = Request::get(format!("/t2/users/{}", round * 100 + i))
                .header("traceparent", traceparent(ctx.trace_id, ctx.span_id))
                .body(Body::empty())
                .unwrap();
            app.clone().oneshot(request).await.unwrap();
        }
    }
    for ctx in &traces {
        let n = collector()
            .matching(|r| r.event.kind == Kind::Req && r.event.trace_id == ctx.trace_id)
            .len();
        assert!(n == 0 || n == 10, "trace split: {n} of 10 kept");
    }
}

#[tokio::test]
async fn panics_are_recorded_then_resumed_by_default() {
    collector();
    let app = app("/t3", ProfilisLayer::new());
    let ctx = SpanContext::new_root();
    let request = Request::get("/t3/panic")
        .header("traceparent", traceparent(ctx.trace_id, ctx.span_id))
        .body(Body::empty())
        .unwrap();
    let outcome = tokio::spawn(app.oneshot(request)).await;
    assert!(outcome.unwrap_err().is_panic(), "the panic propagates");
    let event = &req_events(ctx.trace_id)[0];
    assert_eq!(
        (event.event.status, event.exception_type.as_deref()),
        (500, Some("panic"))
    );
}

#[tokio::test]
async fn a_caught_panic_carries_its_backtrace_with_the_option_on() {
    collector();
    let with = app(
        "/t6",
        ProfilisLayer::new().catch_panics(true).backtraces(true),
    );
    let ctx = SpanContext::new_root();
    let request = Request::get("/t6/panic")
        .header("traceparent", traceparent(ctx.trace_id, ctx.span_id))
        .body(Body::empty())
        .unwrap();
    let response = with.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let event = &req_events(ctx.trace_id)[0];
    assert_eq!(event.message.as_deref(), Some("handler exploded"));
    let stack = event.stack.as_deref().expect("a backtrace");
    assert!(stack.starts_with(profilis::backtrace::HEADER), "{stack}");
    // Innermost last: the handler's closure (where it panicked) is the last
    // frame, after the layer's poll that called it; the panic machinery
    // inside it is left out, and the outer frames past the bound are cut.
    let handler = stack
        .rfind("tower_layer::app::")
        .expect("the handler frame");
    let layer = stack
        .find("profilis::tower::response::ResponseFuture")
        .unwrap();
    assert!(layer < handler, "{stack}");
    assert!(
        stack.trim_end().ends_with("tests/tower_layer.rs:101:21"),
        "{stack}"
    );
    assert!(!stack.contains("panic_fmt"), "{stack}");

    // Off (the default): the same panic, no stack.
    let without = app("/t6", ProfilisLayer::new().catch_panics(true));
    let ctx = SpanContext::new_root();
    let request = Request::get("/t6/panic")
        .header("traceparent", traceparent(ctx.trace_id, ctx.span_id))
        .body(Body::empty())
        .unwrap();
    without.oneshot(request).await.unwrap();
    let event = &req_events(ctx.trace_id)[0];
    assert_eq!(
        (event.message.as_deref(), event.stack.as_deref()),
        (Some("handler exploded"), None)
    );
}

#[tokio::test]
async fn unsampled_requests_still_propagate_their_trace() {
    collector();
    let app = app("/t4", ProfilisLayer::new().sample(0.0).propagate(true));
    let ctx = SpanContext::new_root();
    let request = Request::get("/t4/users/3")
        .header("traceparent", traceparent(ctx.trace_id, ctx.span_id))
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let header = response
        .headers()
        .get(&TRACEPARENT)
        .unwrap()
        .to_str()
        .unwrap();
    let returned = SpanContext::from_traceparent(header).unwrap();
    assert_eq!(returned.trace_id, ctx.trace_id);
    assert!(!returned.sampled);
    assert!(header.ends_with("-00"));
}

#[tokio::test]
async fn known_lengths_are_recorded_at_the_head_and_streams_as_they_end() {
    collector();
    let app = Router::new()
        .route("/t5/full", get(|| async { "0123456789" }))
        .route(
            "/t5/broken",
            get(|| async { chunks(&["abcd", "efg"], true) }),
        )
        .route(
            "/t5/partial",
            get(|| async { chunks(&["abcd", "efg"], false) }),
        )
        .layer(ProfilisLayer::new());
    let call = |path: &str| {
        let ctx = SpanContext::new_root();
        let request = Request::get(path)
            .header("traceparent", traceparent(ctx.trace_id, ctx.span_id))
            .body(Body::empty())
            .unwrap();
        (ctx, app.clone().oneshot(request))
    };

    // A full body: its event is in the ring while the response (and its
    // body, unread) is still held.
    let (ctx, response) = call("/t5/full");
    let response = response.await.unwrap();
    let full = &req_events(ctx.trace_id)[0];
    assert_eq!(full.event.value2, 10, "bytes out from the size hint");
    assert_eq!(full.event.flags & FLAG_ERROR, 0);
    assert_eq!(
        &response.into_body().collect().await.unwrap().to_bytes()[..],
        b"0123456789"
    );
    assert_eq!(req_events(ctx.trace_id).len(), 1, "recorded once");

    // A streaming body failing after two frames: an error, with the bytes
    // sent before it and the body's error type.
    let (ctx, response) = call("/t5/broken");
    let response = response.await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        collector()
            .matching(|r| r.event.trace_id == ctx.trace_id)
            .is_empty(),
        "a streaming body is recorded when it ends, not at the head"
    );
    assert!(response.into_body().collect().await.is_err());
    let broken = &req_events(ctx.trace_id)[0];
    assert_eq!(broken.event.value2, 7, "bytes before the error");
    assert_eq!(broken.event.flags & FLAG_ERROR, FLAG_ERROR);
    assert!(
        broken
            .exception_type
            .as_deref()
            .is_some_and(|t| !t.is_empty()),
        "{:?}",
        broken.exception_type
    );

    // A streaming body dropped after one frame (a client gone): recorded
    // with what was sent.
    let (ctx, response) = call("/t5/partial");
    let mut body = response.await.unwrap().into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), Bytes::from("abcd"));
    drop(body);
    let partial = &req_events(ctx.trace_id)[0];
    assert_eq!(partial.event.value2, 4, "bytes sent before the drop");
}
