//! The service under test: one axum application, instrumented five ways.
//!
//! Routes (the same in every configuration):
//! - `GET /users/{id}`: a path parameter and one SQLite query (rusqlite,
//!   in-memory database of 1,000 users), answered as JSON;
//! - `POST /orders`: a JSON body, parsed and answered as JSON;
//! - `GET /fail`: always fails with a 500 and an error message;
//! - `GET /metrics`: only with [`Config::Prometheus`], the scrape.

use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing::Instrument as _;

/// The query of `GET /users/{id}`.
pub const USER_QUERY: &str = "SELECT id, name, email FROM users WHERE id = ?1";
/// Users in the database (ids 1 to this).
pub const USERS: i64 = 1000;
/// The error of `GET /fail`.
pub const FAIL_TYPE: &str = "PaymentDeclined";
/// The message of that error.
pub const FAIL_MESSAGE: &str = "card declined by the issuer (code 51)";

/// How the service is instrumented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Config {
    /// No instrumentation.
    Bare,
    /// `profilis::tower::ProfilisLayer` and `profilis::db::timed`; a
    /// `profilis-reader` process drains the ring.
    Profilis,
    /// `tracing` spans exported by `tracing-opentelemetry` through the OTLP
    /// exporter (batch, HTTP/protobuf) to a receiver process.
    Otel,
    /// `tracing` events as JSON lines into a file through
    /// `tracing-appender`'s non-blocking writer.
    JsonLog,
    /// `metrics` with `metrics-exporter-prometheus`: a middleware records a
    /// per-route histogram and counter; `/metrics` renders them.
    Prometheus,
}

impl Config {
    /// Every configuration, in the report's order.
    pub const ALL: [Config; 5] = [
        Config::Bare,
        Config::Profilis,
        Config::Otel,
        Config::JsonLog,
        Config::Prometheus,
    ];

    /// The name used on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Config::Bare => "bare",
            Config::Profilis => "profilis",
            Config::Otel => "otel",
            Config::JsonLog => "json-log",
            Config::Prometheus => "prometheus",
        }
    }
}

/// A user row.
#[derive(Serialize)]
struct User {
    id: i64,
    name: String,
    email: String,
}

/// The body of `POST /orders`.
#[derive(Deserialize)]
struct NewOrder {
    item: String,
    quantity: u32,
    unit_cents: u64,
}

#[derive(Serialize)]
struct Order {
    id: u64,
    item: String,
    total_cents: u64,
}

/// Shared state: the database and the order counter.
pub struct AppState {
    config: Config,
    db: Mutex<Connection>,
    next_order: AtomicU64,
    prometheus: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

/// An in-memory SQLite database with [`USERS`] users.
pub fn database() -> rusqlite::Result<Connection> {
    let conn = Connection::open_in_memory()?;
    conn.execute_batch(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL);",
    )?;
    {
        let mut insert = conn.prepare("INSERT INTO users (id, name, email) VALUES (?1, ?2, ?3)")?;
        for id in 1..=USERS {
            insert.execute((id, format!("user {id}"), format!("user{id}@example.com")))?;
        }
    }
    Ok(conn)
}

impl AppState {
    /// State for `config`; `prometheus` is the scrape handle of
    /// [`Config::Prometheus`].
    pub fn new(
        config: Config,
        prometheus: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> rusqlite::Result<Self> {
        Ok(AppState {
            config,
            db: Mutex::new(database()?),
            next_order: AtomicU64::new(1),
            prometheus,
        })
    }

    fn query_user(&self, id: i64) -> rusqlite::Result<Option<User>> {
        let db = self.db.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = db.prepare_cached(USER_QUERY)?;
        stmt.query_row([id], |row| {
            Ok(User {
                id: row.get(0)?,
                name: row.get(1)?,
                email: row.get(2)?,
            })
        })
        .optional()
    }

    /// The query, timed the way the configuration times it.
    fn lookup(&self, id: i64) -> rusqlite::Result<Option<User>> {
        match self.config {
            Config::Bare | Config::Prometheus => self.query_user(id),
            Config::Profilis => profilis::db::timed(USER_QUERY, || self.query_user(id)),
            Config::Otel => tracing::info_span!(
                "db.query",
                db.system = "sqlite",
                db.query.text = USER_QUERY,
                otel.kind = "client"
            )
            .in_scope(|| self.query_user(id)),
            Config::JsonLog => {
                let start = Instant::now();
                let user = self.query_user(id);
                tracing::info!(
                    db.query.text = USER_QUERY,
                    elapsed_us = start.elapsed().as_micros() as u64,
                    rows = user.as_ref().map_or(0, |u| u.is_some() as u64),
                    "query"
                );
                user
            }
        }
    }
}

async fn get_user(State(state): State<Arc<AppState>>, Path(id): Path<i64>) -> Response {
    match state.lookup(id) {
        Ok(Some(user)) => Json(user).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, "no such user").into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn create_order(State(state): State<Arc<AppState>>, Json(order): Json<NewOrder>) -> Response {
    let id = state.next_order.fetch_add(1, Ordering::Relaxed);
    let order = Order {
        id,
        total_cents: order.unit_cents * u64::from(order.quantity),
        item: order.item,
    };
    (StatusCode::CREATED, Json(order)).into_response()
}

async fn fail(State(state): State<Arc<AppState>>) -> Response {
    match state.config {
        Config::Profilis => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Extension(profilis::tower::Exception::new(FAIL_TYPE, FAIL_MESSAGE)),
            FAIL_MESSAGE,
        )
            .into_response(),
        Config::Otel | Config::JsonLog => {
            tracing::error!(
                exception.r#type = FAIL_TYPE,
                exception.message = FAIL_MESSAGE,
                "payment failed"
            );
            (StatusCode::INTERNAL_SERVER_ERROR, FAIL_MESSAGE).into_response()
        }
        Config::Bare | Config::Prometheus => {
            (StatusCode::INTERNAL_SERVER_ERROR, FAIL_MESSAGE).into_response()
        }
    }
}

async fn scrape(State(state): State<Arc<AppState>>) -> Response {
    match &state.prometheus {
        Some(handle) => handle.render().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn route_of(req: &Request) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(unmatched)".to_string(), |p| p.as_str().to_string())
}

/// A server span per request, as `tracing-opentelemetry` users write it:
/// the span is the record (status and error on its attributes).
async fn otel_span(req: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "HTTP request",
        http.request.method = %req.method(),
        http.route = %route_of(&req),
        http.response.status_code = tracing::field::Empty,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
    );
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
    response
}

/// A span per request and one event when it finishes, as users of
/// `tracing-subscriber`'s JSON format write it (the fields of tower-http's
/// `TraceLayer` on-response event).
async fn json_log(req: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        route = %route_of(&req),
    );
    let start = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_us = start.elapsed().as_micros() as u64,
            "finished processing request"
        )
    });
    response
}

/// A per-route latency histogram and request counter, as in axum's
/// `prometheus-metrics` example.
async fn prometheus_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = route_of(&req);
    let method = req.method().to_string();
    let response = next.run(req).await;
    let latency = start.elapsed().as_secs_f64();
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(latency);
    response
}

/// The application for `state`'s configuration.
pub fn router(state: Arc<AppState>) -> Router {
    let config = state.config;
    let mut app = Router::new()
        .route("/users/{id}", get(get_user))
        .route("/orders", post(create_order))
        .route("/fail", get(fail));
    app = match config {
        Config::Bare => app,
        Config::Profilis => app.layer(profilis::tower::ProfilisLayer::new()),
        Config::Otel => app.route_layer(middleware::from_fn(otel_span)),
        Config::JsonLog => app.route_layer(middleware::from_fn(json_log)),
        Config::Prometheus => app
            .route_layer(middleware::from_fn(prometheus_metrics))
            .route("/metrics", get(scrape)),
    };
    app.with_state(state)
}
