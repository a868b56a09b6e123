//! An instrumented axum application: routes of varied latency, DB calls,
//! nested `#[profile]` spans, occasional 500s and panics. It is also the
//! demo workload: `--self-load RATE` makes it drive itself with an internal
//! HTTP client at RATE requests per second until it is stopped.
//!
//! ```text
//! PROFILIS_RING=/dev/shm/demo.ring cargo run --example axum_app --features axum -- [PORT] [--self-load RATE]
//! ```
//!
//! PORT (argument, or the `PORT` env variable) defaults to 3000;
//! 0 picks a free port. The server listens on 127.0.0.1 only and prints
//! `listening on http://127.0.0.1:PORT` once it accepts connections. Stop it
//! with Ctrl-C (SIGINT) or SIGTERM.
//!
//! Routes: `GET /api/users/{id}`, `GET|POST /api/orders`,
//! `GET /api/search?q=...`, `GET /api/flaky` (about 1 in 10 fails with a 500
//! and an exception), `GET /api/report` (panics about 1 in 50 calls),
//! `GET /health` (excluded from profiling).

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Extension, Router};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use profilis::tower::{Exception, ProfilisLayer};
use profilis::{db, profile};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "An axum app instrumented with Profilis (also the demo workload)")]
struct Args {
    /// Port to listen on (127.0.0.1); 0 picks a free one.
    #[arg(env = "PORT", default_value_t = 3000)]
    port: u16,
    /// Drive the app with an internal HTTP client at this many requests per
    /// second until stopped.
    #[arg(long, value_name = "RATE")]
    self_load: Option<f64>,
}

/// A small random number source: the thread's id generator.
fn random(below: u64) -> u64 {
    profilis::context::new_span_id() % below.max(1)
}

async fn pause(min_ms: u64, max_ms: u64) {
    tokio::time::sleep(Duration::from_micros(
        1000 * min_ms + random(1000 * (max_ms - min_ms) + 1),
    ))
    .await;
}

#[derive(Clone, Debug)]
struct User {
    id: u32,
    name: String,
}

#[derive(Default)]
struct Store {
    users: Mutex<HashMap<u32, User>>,
    orders: Mutex<Vec<(u32, u64)>>,
}

type AppState = Arc<Store>;

async fn get_user(State(store): State<AppState>, Path(id): Path<u32>) -> impl IntoResponse {
    let user = db::timed_async("SELECT id, name FROM users WHERE id = $1", async {
        pause(1, 4).await;
        store.users.lock().expect("store lock").get(&id).cloned()
    })
    .await;
    match user {
        Some(u) => (
            StatusCode::OK,
            format!("{{\"id\":{},\"name\":\"{}\"}}", u.id, u.name),
        ),
        None => (
            StatusCode::NOT_FOUND,
            "{\"error\":\"no such user\"}".to_string(),
        ),
    }
}

async fn list_orders(State(store): State<AppState>) -> String {
    let orders = db::timed_async(
        "SELECT id, total FROM orders ORDER BY id DESC LIMIT 20",
        async {
            pause(2, 8).await;
            let orders = store.orders.lock().expect("store lock");
            orders.iter().rev().take(20).copied().collect::<Vec<_>>()
        },
    )
    .await;
    format!("{{\"orders\":{}}}", orders.len())
}

async fn create_order(State(store): State<AppState>, body: Bytes) -> impl IntoResponse {
    let total = body.len() as u64 * 100 + random(5000);
    let id = {
        let mut orders = store.orders.lock().expect("store lock");
        let id = orders.len() as u32 + 1;
        db::timed("INSERT INTO orders (id, total) VALUES ($1, $2)", || {
            orders.push((id, total));
            1usize
        });
        id
    };
    pause(3, 10).await;
    (
        StatusCode::CREATED,
        format!("{{\"id\":{id},\"total\":{total}}}"),
    )
}

#[profile]
fn parse_query(q: &str) -> Result<Vec<String>, String> {
    if q.len() > 200 {
        return Err("query too long".into());
    }
    Ok(q.split_whitespace().map(str::to_lowercase).collect())
}

#[profile]
async fn rank_results(terms: Vec<String>) -> usize {
    pause(5, 30).await;
    terms.iter().map(|t| t.len()).sum::<usize>() * 3
}

async fn search(Query(params): Query<HashMap<String, String>>) -> impl IntoResponse {
    let q = params.get("q").cloned().unwrap_or_default();
    let terms = match parse_query(&q) {
        Ok(t) => t,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    db::timed_async(
        "SELECT doc_id FROM search_index WHERE term IN ($1, $2, $3) LIMIT 50",
        async {
            pause(2, 6).await;
            vec![0u8; terms.len()]
        },
    )
    .await;
    let hits = rank_results(terms).await;
    format!("{{\"hits\":{hits}}}").into_response()
}

async fn flaky() -> impl IntoResponse {
    pause(1, 5).await;
    if random(10) == 0 {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Extension(Exception::new(
                "UpstreamTimeout",
                "inventory service did not answer in 50 ms",
            )),
            "upstream timeout",
        )
            .into_response();
    }
    "ok".into_response()
}

async fn report() -> &'static str {
    pause(10, 40).await;
    if random(50) == 0 {
        panic!("report generator hit an invariant violation");
    }
    "report"
}

fn app(store: AppState) -> Router {
    Router::new()
        .route("/api/users/{id}", get(get_user))
        .route("/api/orders", get(list_orders).post(create_order))
        .route("/api/search", get(search))
        .route("/api/flaky", get(flaky))
        .route("/api/report", get(report))
        .route("/health", get(|| async { "ok" }))
        .layer(
            ProfilisLayer::new()
                .exclude_routes(["/health"])
                .propagate(true)
                .catch_panics(true),
        )
        .with_state(store)
}

/// Sends requests to `base` at `rate` per second, a mix of every route.
async fn self_load(base: String, rate: f64) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.001)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let words = [
        "rust",
        "ring buffer",
        "latency p99",
        "axum tower",
        "profiling",
    ];
    loop {
        tick.tick().await;
        let (method, path, body) = match random(100) {
            0..=34 => ("GET", format!("/api/users/{}", random(120)), ""),
            35..=49 => ("GET", "/api/orders".to_string(), ""),
            50..=59 => ("POST", "/api/orders".to_string(), "{\"items\":[1,2,3]}"),
            60..=79 => (
                "GET",
                format!(
                    "/api/search?q={}",
                    words[random(words.len() as u64) as usize].replace(' ', "+")
                ),
                "",
            ),
            80..=89 => ("GET", "/api/flaky".to_string(), ""),
            90..=94 => ("GET", "/api/report".to_string(), ""),
            _ => ("GET", "/health".to_string(), ""),
        };
        let request = match hyper::Request::builder()
            .method(method)
            .uri(format!("{base}{path}"))
            .body(Full::new(Bytes::from_static(body.as_bytes())))
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("self-load: bad request {path}: {e}");
                continue;
            }
        };
        let client = client.clone();
        tokio::spawn(async move {
            match client.request(request).await {
                Ok(response) => {
                    let _ = response.into_body().collect().await;
                }
                Err(e) => eprintln!("self-load: {e}"),
            }
        });
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(rate) = args.self_load {
        anyhow::ensure!(
            rate.is_finite() && rate > 0.0,
            "--self-load RATE must be a positive number of requests per second"
        );
    }
    let port = args.port;
    let ring =
        profilis::init().context("opening the Profilis ring (PROFILIS_RING / PROFILIS_DIR)")?;
    eprintln!("recording into {}", ring.path().display());

    let store = AppState::default();
    {
        let mut users = store.users.lock().expect("store lock");
        for id in 1..=100 {
            users.insert(
                id,
                User {
                    id,
                    name: format!("user{id}"),
                },
            );
        }
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    println!("listening on http://{addr}");
    if let Some(rate) = args.self_load {
        eprintln!("self-load: {rate} requests per second");
        tokio::spawn(self_load(format!("http://{addr}"), rate));
    }
    axum::serve(listener, app(store))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")?;
    Ok(())
}
