//! An OTLP receiver for the tests, built on the official protobuf
//! definitions (`opentelemetry-proto`): the generated tonic
//! `TraceService`/`MetricsService` servers for OTLP/gRPC, and an axum
//! endpoint decoding `/v1/traces` and `/v1/metrics` bodies with
//! `prost::Message::decode` for OTLP/HTTP. It decodes exactly what an
//! OpenTelemetry Collector's OTLP receiver decodes, and keeps every request.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

/// Everything received.
#[derive(Default)]
pub struct Received {
    /// Trace requests, in arrival order.
    pub traces: Vec<ExportTraceServiceRequest>,
    /// Metrics requests, in arrival order.
    pub metrics: Vec<ExportMetricsServiceRequest>,
    /// `authorization` header (metadata) of each request.
    pub authorization: Vec<Option<String>>,
    /// `User-Agent` header of each trace request.
    pub user_agent: Vec<Option<String>>,
}

/// What the receiver answers.
#[derive(Default)]
struct Behaviour {
    /// Fail this many trace requests with 503 / UNAVAILABLE first.
    unavailable: AtomicUsize,
    /// Fail this many trace requests with 400 / INVALID_ARGUMENT first.
    invalid: AtomicUsize,
}

#[derive(Clone, Default)]
struct Store {
    received: Arc<Mutex<Received>>,
    behaviour: Arc<Behaviour>,
}

enum Verdict {
    Ok,
    Unavailable,
    Invalid,
}

impl Store {
    fn verdict(&self) -> Verdict {
        let take = |n: &AtomicUsize| n.fetch_update(SeqCst, SeqCst, |v| v.checked_sub(1)).is_ok();
        if take(&self.behaviour.unavailable) {
            Verdict::Unavailable
        } else if take(&self.behaviour.invalid) {
            Verdict::Invalid
        } else {
            Verdict::Ok
        }
    }
}

#[tonic::async_trait]
impl TraceService for Store {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        match self.verdict() {
            Verdict::Unavailable => return Err(tonic::Status::unavailable("busy, try again")),
            Verdict::Invalid => return Err(tonic::Status::invalid_argument("bad spans")),
            Verdict::Ok => {}
        }
        let auth = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let agent = request
            .metadata()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut r = self.received.lock().unwrap();
        r.authorization.push(auth);
        r.user_agent.push(agent);
        r.traces.push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Store {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.received
            .lock()
            .unwrap()
            .metrics
            .push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

async fn http_traces(State(store): State<Store>, headers: HeaderMap, body: Bytes) -> Response {
    if headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()) != Some(b"application/x-protobuf") {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    }
    match store.verdict() {
        Verdict::Unavailable => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "0")],
            )
                .into_response()
        }
        Verdict::Invalid => return (StatusCode::BAD_REQUEST, "bad spans").into_response(),
        Verdict::Ok => {}
    }
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    {
        let mut r = store.received.lock().unwrap();
        r.authorization.push(auth);
        r.user_agent.push(agent);
        r.traces.push(request);
    }
    protobuf(ExportTraceServiceResponse::default().encode_to_vec())
}

async fn http_metrics(State(store): State<Store>, headers: HeaderMap, body: Bytes) -> Response {
    if headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()) != Some(b"application/x-protobuf") {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    }
    let Ok(request) = ExportMetricsServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    store.received.lock().unwrap().metrics.push(request);
    protobuf(ExportMetricsServiceResponse::default().encode_to_vec())
}

fn protobuf(body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        body,
    )
        .into_response()
}

/// Which OTLP transport a receiver speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP (protobuf).
    Http,
}

impl Protocol {
    /// The reader's `--otlp-protocol` value.
    pub fn flag(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::Http => "http",
        }
    }
}

/// A running receiver on 127.0.0.1.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    store: Store,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Receiver {
    /// Starts a receiver on an ephemeral port.
    pub fn start(protocol: Protocol) -> Receiver {
        Receiver::start_on(protocol, "127.0.0.1:0".parse().unwrap()).expect("binding the receiver")
    }

    /// Starts a receiver on `addr`.
    pub fn start_on(protocol: Protocol, addr: SocketAddr) -> std::io::Result<Receiver> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind(addr))?;
        let addr = listener.local_addr()?;
        let store = Store::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        match protocol {
            Protocol::Grpc => {
                let router = tonic::transport::Server::builder()
                    .add_service(TraceServiceServer::new(store.clone()))
                    .add_service(MetricsServiceServer::new(store.clone()));
                let incoming = tonic::transport::server::TcpIncoming::from(listener);
                runtime.spawn(router.serve_with_incoming_shutdown(incoming, shutdown));
            }
            Protocol::Http => {
                let app = axum::Router::new()
                    .route("/v1/traces", axum::routing::post(http_traces))
                    .route("/v1/metrics", axum::routing::post(http_metrics))
                    .with_state(store.clone());
                runtime.spawn(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await
                });
            }
        }
        Ok(Receiver {
            addr,
            store,
            runtime: Some(runtime),
            stop: Some(stop),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Fails the next `n` trace requests with a retryable error.
    pub fn fail_unavailable(&self, n: usize) {
        self.store.behaviour.unavailable.store(n, SeqCst);
    }

    /// Fails the next `n` trace requests with a non-retryable error.
    pub fn fail_invalid(&self, n: usize) {
        self.store.behaviour.invalid.store(n, SeqCst);
    }

    /// Runs `f` over what was received.
    pub fn with<T>(&self, f: impl FnOnce(&Received) -> T) -> T {
        f(&self.store.received.lock().unwrap())
    }

    /// Spans received, with their resource's `service.name`.
    pub fn spans(&self) -> Vec<(String, Span)> {
        self.with(|r| {
            let mut out = Vec::new();
            for request in &r.traces {
                for rs in &request.resource_spans {
                    let attrs = rs
                        .resource
                        .as_ref()
                        .map(|res| res.attributes.as_slice())
                        .unwrap_or_default();
                    let service = string_attr(attrs, "service.name").unwrap_or_default();
                    for ss in &rs.scope_spans {
                        for span in &ss.spans {
                            out.push((service.clone(), span.clone()));
                        }
                    }
                }
            }
            out
        })
    }

    /// Number of spans received.
    pub fn span_count(&self) -> usize {
        self.with(|r| {
            r.traces
                .iter()
                .flat_map(|t| &t.resource_spans)
                .flat_map(|rs| &rs.scope_spans)
                .map(|ss| ss.spans.len())
                .sum()
        })
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
        }
    }
}

/// A string attribute's value.
pub fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(Value::StringValue(s)) => Some(s.clone()),
            _ => None,
        })
}

/// An integer attribute's value.
pub fn int_attr(attrs: &[KeyValue], key: &str) -> Option<i64> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(Value::IntValue(i)) => Some(*i),
            _ => None,
        })
}

/// Bytes as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
