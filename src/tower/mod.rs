//! A tower [`Layer`] that records one REQ event per HTTP request: route
//! template, method, status, duration, bytes in and out, error flag and
//! exception for 5xx responses and panics, under the request's trace.
//!
//! ```
//! # #[cfg(feature = "axum")] {
//! use axum::{routing::get, Router};
//! use profilis::tower::ProfilisLayer;
//!
//! let app: Router = Router::new()
//!     .route("/api/users/{id}", get(|| async { "user" }))
//!     .route("/health", get(|| async { "ok" }))
//!     .layer(
//!         ProfilisLayer::new()
//!             .exclude_routes(["/health", "/static/*"])
//!             .sample(0.25)
//!             .propagate(true),
//!     );
//! # let _ = app; }
//! ```
//!
//! - **Route**: the template from axum's `MatchedPath` (feature `axum`), or a
//!   [`RouteTemplate`] request extension set by another router; a request
//!   with neither is recorded as `<unmatched>`, never under its raw path, so
//!   the number of names stays bounded.
//! - **Exclusion** ([`ProfilisLayer::exclude_routes`]) matches the request
//!   path: exact (`/health`) or prefix (`/static/*`). Excluded requests pass
//!   through untouched.
//! - **Sampling** ([`ProfilisLayer::sample`]) is decided first, from the trace
//!   id (the incoming `traceparent`'s, or a fresh one): every service with the
//!   same rate keeps or drops a trace whole. A dropped request still runs in
//!   its (unsampled) context, so spans, `#[profile]` and DB events inside it
//!   record nothing either.
//! - **Duration** runs from the call to the response head; **bytes in** are
//!   the `Content-Length` (or the body's exact size hint); **bytes out** are
//!   the response body's exact size hint, recorded with the response head,
//!   or, for a streaming body, counted as it streams, the event being
//!   recorded when the body ends, fails or is dropped.
//! - **Errors**: a 5xx status sets the error flag; the exception type and
//!   message come from an [`Exception`] response extension, or default to the
//!   status (`HTTP 500 Internal Server Error`). A panic in the inner service
//!   is recorded as status 500 with exception type `panic` and the panic
//!   message, then resumed, unless [`ProfilisLayer::catch_panics`] turns it
//!   into a 500 response here. See docs/instrumentation.md for how this
//!   combines with tower-http's `CatchPanicLayer`.

use crate::clock;
use crate::context::{self, SpanContext};
use crate::hash::hash_bytes;
use crate::idcache::IdCache;
use crate::record::{Method, StrId};
use crate::writer::Ring;
use http::header::{HeaderName, CONTENT_LENGTH};
use http::{Request, Response};
use http_body::Body;
use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

mod response;

use response::{Pending, Traced};
pub use response::{ResponseBody, ResponseFuture};

/// The W3C trace context header.
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The route name of requests that matched no route.
pub const UNMATCHED: &str = "<unmatched>";

/// An exception to record with a failed (5xx) response: attach it as a
/// response extension, e.g. in axum
/// `(StatusCode::INTERNAL_SERVER_ERROR, Extension(Exception::new("DbTimeout", msg)), body)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exception {
    /// Exception type (interned: keep it to a bounded set of names).
    pub kind: Cow<'static, str>,
    /// Message (stored in a message slot, cut to 240 bytes).
    pub message: Cow<'static, str>,
}

impl Exception {
    /// An exception of type `kind` with `message`.
    pub fn new(kind: impl Into<Cow<'static, str>>, message: impl Into<Cow<'static, str>>) -> Self {
        Exception {
            kind: kind.into(),
            message: message.into(),
        }
    }
}

/// A route template for routers other than axum's: insert it as a request
/// extension before the request reaches the layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteTemplate(pub &'static str);

/// Where events go: the process-wide ring or one given to the layer. One
/// word: the response future carries it through every move.
enum Sink {
    /// The process-wide ring, set when the request started (a `OnceLock`,
    /// so it is still set when the request ends).
    Global,
    Owned(Ring),
}

impl Sink {
    #[inline]
    fn ring(&self) -> Option<&Ring> {
        match self {
            Sink::Global => crate::global(),
            Sink::Owned(r) => Some(r),
        }
    }
}

#[derive(Clone)]
struct Config {
    ring: Option<Ring>,
    /// Ids of route templates in `ring`, by hash of the text: interning
    /// compares the text in the shared table, the cache only hashes it.
    routes: Arc<IdCache>,
    exclude_exact: Vec<String>,
    exclude_prefix: Vec<String>,
    /// Keep a trace when its mixed id is below this; `None` keeps all.
    sample_below: Option<u64>,
    propagate: bool,
    catch_panics: bool,
    backtraces: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ring: None,
            routes: Arc::new(IdCache::new()),
            exclude_exact: Vec::new(),
            exclude_prefix: Vec::new(),
            sample_below: None,
            propagate: false,
            catch_panics: false,
            backtraces: false,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("ring", &self.ring.as_ref().map(Ring::path))
            .field("exclude_exact", &self.exclude_exact)
            .field("exclude_prefix", &self.exclude_prefix)
            .field("sample_below", &self.sample_below)
            .field("propagate", &self.propagate)
            .field("catch_panics", &self.catch_panics)
            .field("backtraces", &self.backtraces)
            .finish()
    }
}

impl Config {
    #[inline]
    fn excluded(&self, path: &str) -> bool {
        self.exclude_exact.iter().any(|p| p == path)
            || self
                .exclude_prefix
                .iter()
                .any(|p| path.starts_with(p.as_str()))
    }

    #[inline]
    fn keep(&self, trace_id: u128) -> bool {
        match self.sample_below {
            None => true,
            Some(below) => mix(trace_id) < below,
        }
    }
}

/// A 64-bit mix of a trace id, so that ids whose bits are not uniformly
/// random still sample at the configured rate.
#[inline]
fn mix(trace_id: u128) -> u64 {
    let mut x = (trace_id as u64) ^ ((trace_id >> 64) as u64).rotate_left(32);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Records a REQ event per request; see the [module docs](self).
#[derive(Clone, Debug, Default)]
pub struct ProfilisLayer {
    // Shared: axum may apply the layer per request (routers used without
    // `with_state`), so applying it must be cheap.
    config: Arc<Config>,
}

impl ProfilisLayer {
    /// A layer recording into the process-wide ring ([`crate::init`]),
    /// keeping every request, without response `traceparent`.
    pub fn new() -> Self {
        ProfilisLayer::default()
    }

    /// Records into `ring` instead of the process-wide ring. (Spans, DB and
    /// `#[profile]` events inside the request still go to the process-wide
    /// ring.)
    pub fn ring(mut self, ring: Ring) -> Self {
        let config = Arc::make_mut(&mut self.config);
        config.ring = Some(ring);
        // Ids are per ring.
        config.routes = Arc::new(IdCache::new());
        self
    }

    /// Request paths not to record: exact paths (`/health`) or prefixes
    /// ending in `*` (`/static/*` matches `/static/app.js`; the bare
    /// `/static` is matched too).
    pub fn exclude_routes<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let config = Arc::make_mut(&mut self.config);
        for pattern in patterns {
            let pattern: String = pattern.into();
            match pattern.strip_suffix('*') {
                Some(prefix) => {
                    if let Some(bare) = prefix.strip_suffix('/').filter(|b| !b.is_empty()) {
                        config.exclude_exact.push(bare.to_string());
                    }
                    config.exclude_prefix.push(prefix.to_string());
                }
                None => config.exclude_exact.push(pattern),
            }
        }
        self
    }

    /// Keeps this fraction of traces (0.0..=1.0; values outside are clamped,
    /// NaN keeps everything). The decision depends only on the trace id.
    pub fn sample(mut self, rate: f64) -> Self {
        Arc::make_mut(&mut self.config).sample_below = if rate.is_nan() || rate >= 1.0 {
            None
        } else if rate <= 0.0 {
            Some(0)
        } else {
            Some((rate * 18_446_744_073_709_551_616.0) as u64)
        };
        self
    }

    /// Sets `traceparent` on responses (default off), so a caller can link
    /// its own trace to this request's span. Unsampled traces get it too,
    /// with the sampled flag clear.
    pub fn propagate(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.config).propagate = on;
        self
    }

    /// Turns a panic in the inner service into an empty 500 response here
    /// (default off: the panic is recorded, then resumed, for an outer
    /// `CatchPanicLayer` or the server to handle).
    pub fn catch_panics(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.config).catch_panics = on;
        self
    }

    /// Attaches the backtrace of a panic in the inner service to its event
    /// (default off). While the inner service is polled, a panic hook
    /// (installed on first use, calling the hook it replaced) captures the
    /// panicking thread's backtrace; the event's message then carries it as
    /// its stack, outermost frame first. Costs nothing until a panic; a
    /// hook the application sets later replaces it (no backtrace then).
    pub fn backtraces(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.config).backtraces = on;
        self
    }
}

impl<S> Layer<S> for ProfilisLayer {
    type Service = ProfilisService<S>;

    fn layer(&self, inner: S) -> ProfilisService<S> {
        ProfilisService {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service [`ProfilisLayer`] wraps around another.
#[derive(Clone, Debug)]
pub struct ProfilisService<S> {
    inner: S,
    config: Arc<Config>,
}

#[inline]
fn cached_id(ring: &Ring, routes: &IdCache, text: &str) -> StrId {
    let hash = hash_bytes(text.as_bytes());
    if let Some(id) = routes.get(hash) {
        return id;
    }
    let id = ring.intern(text);
    routes.insert(hash, id);
    id
}

#[inline]
fn route_id<B>(ring: &Ring, routes: &IdCache, request: &Request<B>) -> StrId {
    #[cfg(feature = "axum")]
    if let Some(path) = request.extensions().get::<axum::extract::MatchedPath>() {
        return cached_id(ring, routes, path.as_str());
    }
    if let Some(RouteTemplate(template)) = request.extensions().get::<RouteTemplate>() {
        return cached_id(ring, routes, template);
    }
    crate::name!(UNMATCHED).id(ring)
}

/// The request body's size: exact when it is known (hyper reports a
/// `Content-Length` body's length as an exact size hint), else the
/// `Content-Length` header, else the hint's lower bound.
#[inline]
fn request_bytes<B: Body>(request: &Request<B>) -> u64 {
    let hint = request.body().size_hint();
    if let Some(exact) = hint.exact() {
        return exact;
    }
    request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(hint.lower())
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ProfilisService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Body,
    ResBody: Body,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let config = &*self.config;
        if config.excluded(request.uri().path()) {
            return ResponseFuture {
                inner: self.inner.call(request),
                traced: None,
            };
        }
        let incoming = request
            .headers()
            .get(&TRACEPARENT)
            .and_then(|v| SpanContext::from_traceparent_bytes(v.as_bytes()).ok());
        let mut ctx = match incoming {
            Some(parent) => parent.child(),
            None => SpanContext::new_root(),
        };
        ctx.sampled = config.keep(ctx.trace_id);
        let sink = match &config.ring {
            _ if !ctx.sampled => None,
            Some(ring) => Some(Sink::Owned(ring.clone())),
            None => crate::global().map(|_| Sink::Global),
        };
        let pending = sink.and_then(|sink| {
            let ring = sink.ring()?;
            Some(Pending {
                route: route_id(ring, &config.routes, &request),
                method: method(request.method()),
                bytes_in: request_bytes(&request),
                start: clock::now(),
                sink,
            })
        });
        let inner = {
            let _ctx = context::enter(ctx);
            self.inner.call(request)
        };
        ResponseFuture {
            inner,
            traced: Some(Traced {
                ctx,
                pending,
                propagate: config.propagate,
                catch_panics: config.catch_panics,
                backtraces: config.backtraces,
            }),
        }
    }
}

#[inline]
fn method(method: &http::Method) -> Method {
    match *method {
        http::Method::GET => Method::Get,
        http::Method::POST => Method::Post,
        http::Method::PUT => Method::Put,
        http::Method::DELETE => Method::Delete,
        http::Method::PATCH => Method::Patch,
        http::Method::HEAD => Method::Head,
        http::Method::OPTIONS => Method::Options,
        http::Method::CONNECT => Method::Connect,
        http::Method::TRACE => Method::Trace,
        _ => Method::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusion_patterns() {
        let layer = ProfilisLayer::new().exclude_routes(["/health", "/static/*", "/internal*"]);
        let c = &*layer.config;
        assert!(c.excluded("/health"));
        assert!(!c.excluded("/health/deep"));
        assert!(!c.excluded("/healthz"));
        assert!(c.excluded("/static"));
        assert!(c.excluded("/static/app.js"));
        assert!(!c.excluded("/statics"));
        assert!(c.excluded("/internal-metrics"));
        assert!(!c.excluded("/api/users/1"));
    }

    #[test]
    fn sampling_bounds() {
        assert!(ProfilisLayer::new().sample(1.0).config.keep(1));
        assert!(ProfilisLayer::new().sample(f64::NAN).config.keep(1));
        let none = ProfilisLayer::new().sample(0.0).config;
        let half = ProfilisLayer::new().sample(0.5).config;
        let (none, half) = (&*none, &*half);
        let mut kept = 0;
        for i in 1..=10_000u128 {
            assert!(!none.keep(i));
            // Sequential ids: the mix spreads them.
            kept += half.keep(i) as u32;
            assert_eq!(half.keep(i), half.keep(i));
        }
        assert!((4700..5300).contains(&kept), "{kept}");
    }
}
