//! Drives N requests through an axum router in-process, for instruction
//! counts of the tower layer's path under callgrind:
//!
//! ```sh
//! cargo build --release -p profilis-benches --example tower_cost
//! valgrind --tool=callgrind target/release/examples/tower_cost layer-db 20000
//! ```
//!
//! Modes: `bare` (the router alone), `noop` (a no-op `Router::layer`, what
//! axum charges for any layer), `layer` (`ProfilisLayer`), `layer-db`
//! (`ProfilisLayer` and one `profilis::db::timed` call in the handler, as
//! the service benchmark's `/users/{id}` route), `layer-fail` (every
//! request a 500 with an `Exception` extension, as its `/fail` route;
//! `bare-fail` is the same request without the layer). Run each mode with two
//! request counts; the difference of the totals over the difference of the
//! counts is the cost per request, start-up excluded.

use axum::body::Body;
use axum::extract::Path;
use axum::http::Request;
use axum::routing::get;
use axum::Router;
use profilis::tower::ProfilisLayer;
use profilis::{FullPolicy, RingOptions};
use std::hint::black_box;
use tower::ServiceExt;

const QUERY: &str = "SELECT id, name, email FROM users WHERE id = ?1";

async fn plain(Path(id): Path<u64>) -> String {
    format!("user {}", black_box(id))
}

async fn fail() -> axum::response::Response {
    use axum::response::IntoResponse;
    let message = "card declined by the issuer (code 51)";
    (
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        axum::Extension(profilis::tower::Exception::new("PaymentDeclined", message)),
        message,
    )
        .into_response()
}

async fn timed(Path(id): Path<u64>) -> String {
    let id = profilis::db::timed(QUERY, || Some(black_box(id))).unwrap_or(0);
    format!("user {id}")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "layer".into());
    let n: u64 = args.next().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let path =
        std::env::temp_dir().join(format!("profilis-tower-cost-{}.ring", std::process::id()));
    let options = RingOptions::default()
        .capacity(1 << 16)
        .policy(FullPolicy::OverwriteOldest);
    profilis::init_with(&path, options).expect("creating the ring");
    let _ = std::fs::remove_file(&path);
    let routes = |db: bool| -> Router {
        Router::new()
            .route("/users/{id}", if db { get(timed) } else { get(plain) })
            .route("/fail", get(fail))
    };
    let app = match mode.as_str() {
        "bare" | "bare-fail" => routes(false),
        "noop" => routes(false).layer(tower::util::MapResponseLayer::new(|r| r)),
        "layer" => routes(false).layer(ProfilisLayer::new()),
        "layer-db" | "layer-fail" => routes(true).layer(ProfilisLayer::new()),
        other => panic!("unknown mode {other}: bare, bare-fail, noop, layer, layer-db, layer-fail"),
    }
    .with_state(());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    for i in 0..n {
        let uri = match mode.as_str() {
            "layer-fail" | "bare-fail" => "/fail".to_string(),
            _ => format!("/users/{}", i % 1000 + 1),
        };
        let request = Request::get(uri).body(Body::empty()).unwrap();
        let response = runtime.block_on(app.clone().oneshot(request)).unwrap();
        black_box(response.status());
    }
}
