//! The dashboard and HTTP API: an axum [`Router`] over the drain loop's
//! snapshots, served on its own threads (see [`server`]).
//!
//! Handlers never touch the drain loop: each one clones the current
//! `Arc<Snapshot>` from the [`SnapshotHandle`] (a lock held for the clone
//! only) and renders outside any lock; rendered bodies are cached per
//! snapshot, so many clients cost one render per flush interval.
//!
//! Endpoints, all under the prefix (default `/_profilis`), one module each:
//! [`dashboard`] (`/`, the [`page`]; the bare prefix redirects there),
//! [`metrics_json`] (`/metrics.json`), [`health`] (`/health`),
//! [`prometheus`] (`/metrics`), [`postmortem`] (`/postmortem/{ring_id}/{pid}.json`
//! and `.jsonl`), [`assets`] (`/assets/...`), and [`auth`]
//! (bearer token, `?token=` and the login form, `/login`, `/logout`).

pub mod assets;
pub mod auth;
pub mod dashboard;
pub mod health;
pub mod metrics_json;
pub mod page;
pub mod postmortem;
pub mod prometheus;
pub mod server;

use crate::views::{Snapshot, SnapshotHandle};
use anyhow::bail;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Colour theme of the dashboard.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Theme {
    /// Light text on a dark background.
    #[default]
    Dark,
    /// Dark text on a light background.
    Light,
}

impl Theme {
    /// `dark` or `light`.
    pub fn as_str(self) -> &'static str {
        match self {
            Theme::Dark => "dark",
            Theme::Light => "light",
        }
    }
}

/// Settings of the web UI (from the command line or built by tests).
#[derive(Clone, Debug)]
pub struct UiConfig {
    /// Path prefix: empty or `/name[/name...]`, no trailing slash.
    pub prefix: String,
    /// Page title.
    pub title: String,
    /// Default colour theme.
    pub theme: Theme,
    /// Page refresh interval, ms.
    pub refresh_ms: u64,
    /// Extra stylesheet served as `assets/custom.css`.
    pub custom_css: Option<String>,
    /// Origins allowed by CORS.
    pub cors_origins: Vec<HeaderValue>,
    /// Bearer token required on every endpoint, if any.
    pub token: Option<String>,
    /// Serve `/health` without the token.
    pub health_public: bool,
    /// Served over HTTPS: Secure cookies.
    pub tls: bool,
    /// `--ui-https-only`: also Strict-Transport-Security.
    pub https_only: bool,
    /// How long a browser session lasts.
    pub session_lifetime: Duration,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            prefix: "/_profilis".into(),
            title: "Profilis".into(),
            theme: Theme::Dark,
            refresh_ms: 2000,
            custom_css: None,
            cors_origins: Vec::new(),
            token: None,
            health_public: false,
            tls: false,
            https_only: false,
            session_lifetime: auth::SESSION_LIFETIME,
        }
    }
}

/// Where and how to listen.
#[derive(Clone, Debug)]
pub struct Listen {
    /// Address (port 0: a free port).
    pub addr: SocketAddr,
    /// Certificate chain and key (PEM) for HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// `--ui-prefix` as used in routes: `/` and `` become empty, a trailing
/// slash is dropped, and only path-safe characters are accepted.
pub fn normalize_prefix(prefix: &str) -> anyhow::Result<String> {
    let p = prefix.trim_end_matches('/');
    if p.is_empty() {
        return Ok(String::new());
    }
    if !p.starts_with('/')
        || p.contains("//")
        || !p
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b))
    {
        bail!(
            "--ui-prefix {prefix:?}: expected a path such as /_profilis (letters, digits, / - _ . ~)"
        );
    }
    Ok(p.to_string())
}

/// The warning printed when the UI listens beyond loopback without a
/// token, if it does.
pub fn exposure_warning(addr: SocketAddr, has_token: bool) -> Option<String> {
    if has_token || addr.ip().is_loopback() {
        return None;
    }
    Some(format!(
        "warning: the dashboard and HTTP API listen on {addr} without a token: anyone who can \
         reach this address can read the metrics, routes and error messages. Set \
         --ui-token-file FILE (or PROFILIS_UI_TOKEN), or listen on 127.0.0.1"
    ))
}

/// A body rendered for one snapshot, reused until the snapshot changes.
#[derive(Default)]
pub struct RenderCache {
    slot: Mutex<Option<(Arc<Snapshot>, Bytes)>>,
}

impl RenderCache {
    /// The body for `snapshot`, rendered with `render` unless cached.
    /// Renders outside the lock; concurrent misses may render twice.
    pub fn get(
        &self,
        snapshot: &Arc<Snapshot>,
        render: impl FnOnce(&Snapshot) -> Vec<u8>,
    ) -> Bytes {
        if let Ok(slot) = self.slot.lock() {
            if let Some((cached, body)) = slot.as_ref() {
                if Arc::ptr_eq(cached, snapshot) {
                    return body.clone();
                }
            }
        }
        let body = Bytes::from(render(snapshot));
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Some((snapshot.clone(), body.clone()));
        }
        body
    }
}

/// Shared state of the handlers.
pub struct WebState {
    /// Where the drain loop publishes.
    pub snapshots: SnapshotHandle,
    /// Settings.
    pub config: UiConfig,
    /// Token and session checks.
    pub auth: auth::Auth,
    /// The dashboard page, rendered once.
    pub page: Bytes,
    /// metrics.json per snapshot.
    pub json_cache: RenderCache,
    /// Prometheus text per snapshot.
    pub prometheus_cache: RenderCache,
}

impl WebState {
    /// State over `snapshots` with `config`.
    pub fn new(snapshots: SnapshotHandle, config: UiConfig) -> Arc<WebState> {
        let page = page::render_page(&config, page::View::Dashboard);
        Arc::new(WebState {
            snapshots,
            auth: auth::Auth::new(config.token.clone(), config.session_lifetime),
            page,
            json_cache: RenderCache::default(),
            prometheus_cache: RenderCache::default(),
            config,
        })
    }

    /// `prefix` + `path`.
    pub fn path(&self, path: &str) -> String {
        format!("{}{path}", self.config.prefix)
    }
}

/// The router: every endpoint under the prefix, auth, CORS, security
/// headers and debug request logging.
pub fn router(state: Arc<WebState>) -> Router {
    let p = |path: &str| state.path(path);
    let mut protected = Router::new()
        .route(&p("/metrics.json"), get(metrics_json::handler))
        .route(&p("/metrics"), get(prometheus::handler))
        .route(&p("/postmortem/{ring_id}/{file}"), get(postmortem::handler));
    let mut public = Router::new()
        .route(&p("/"), get(dashboard::handler))
        .route(&p("/login"), post(auth::login))
        .route(&p("/logout"), post(auth::logout))
        .route(&p("/assets/{file}"), get(assets::handler));
    if !state.config.prefix.is_empty() {
        public = public.route(&state.config.prefix, get(dashboard::redirect_to_slash));
    }
    if state.config.health_public {
        public = public.route(&p("/health"), get(health::handler));
    } else {
        protected = protected.route(&p("/health"), get(health::handler));
    }
    let protected =
        protected.route_layer(middleware::from_fn_with_state(state.clone(), auth::require));
    let mut app = public
        .merge(protected)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            common_headers,
        ))
        .with_state(state.clone());
    if !state.config.cors_origins.is_empty() {
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(state.config.cors_origins.clone()))
                .allow_methods([Method::GET, Method::HEAD])
                .allow_headers([header::AUTHORIZATION, header::ACCEPT])
                .max_age(std::time::Duration::from_secs(600)),
        );
    }
    app.layer(middleware::from_fn_with_state(state, log_request))
}

/// Headers on every response: no MIME sniffing, no referrer (so a
/// `?token=` URL never leaks), no framing, HSTS under `--ui-https-only`.
async fn common_headers(
    State(state): State<Arc<WebState>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if state.config.https_only {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// Debug log of each request: method, path without the query string (which
/// may hold `?token=`), status and time. Headers are never logged, and a
/// token a client put in the path by mistake is masked.
async fn log_request(State(state): State<Arc<WebState>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = state.auth.mask(request.uri().path()).into_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::debug!(
        %method,
        path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "http request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(normalize_prefix("/_profilis").unwrap(), "/_profilis");
        assert_eq!(normalize_prefix("/_profilis/").unwrap(), "/_profilis");
        assert_eq!(normalize_prefix("/").unwrap(), "");
        assert_eq!(normalize_prefix("/a/b-c").unwrap(), "/a/b-c");
        for bad in ["profilis", "/a b", "/{x}", "/a//b", "/*"] {
            assert!(normalize_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn warns_beyond_loopback_without_token() {
        let any: SocketAddr = "0.0.0.0:9470".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:9470".parse().unwrap();
        let lo6: SocketAddr = "[::1]:9470".parse().unwrap();
        assert!(exposure_warning(any, false)
            .unwrap()
            .contains("0.0.0.0:9470"));
        assert!(exposure_warning(any, true).is_none());
        assert!(exposure_warning(lo, false).is_none());
        assert!(exposure_warning(lo6, false).is_none());
    }
}
