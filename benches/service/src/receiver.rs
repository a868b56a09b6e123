//! A minimal OTLP/HTTP traces receiver, the collection side of the `otel`
//! configuration: `POST /v1/traces` bodies are decoded with
//! `prost::Message::decode` into the official protobuf types
//! (`opentelemetry-proto`), as an OpenTelemetry Collector's OTLP receiver
//! decodes them, and counted; nothing is kept.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use prost::Message as _;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// What the receiver has decoded.
#[derive(Default)]
pub struct Counters {
    requests: AtomicU64,
    spans: AtomicU64,
    server_spans: AtomicU64,
    client_spans: AtomicU64,
    error_spans: AtomicU64,
    span_events: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counts {
    /// Export requests decoded.
    pub requests: u64,
    /// Spans in them.
    pub spans: u64,
    /// Server spans (one per HTTP request).
    pub server_spans: u64,
    /// Client spans (one per query).
    pub client_spans: u64,
    /// Spans with an error status.
    pub error_spans: u64,
    /// Events attached to spans (the logged errors).
    pub span_events: u64,
}

impl Counters {
    /// The counts so far.
    pub fn snapshot(&self) -> Counts {
        Counts {
            requests: self.requests.load(Relaxed),
            spans: self.spans.load(Relaxed),
            server_spans: self.server_spans.load(Relaxed),
            client_spans: self.client_spans.load(Relaxed),
            error_spans: self.error_spans.load(Relaxed),
            span_events: self.span_events.load(Relaxed),
        }
    }

    fn count(&self, request: &ExportTraceServiceRequest) {
        self.requests.fetch_add(1, Relaxed);
        let spans = request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans);
        for span in spans {
            self.spans.fetch_add(1, Relaxed);
            if span.kind == SpanKind::Server as i32 {
                self.server_spans.fetch_add(1, Relaxed);
            } else if span.kind == SpanKind::Client as i32 {
                self.client_spans.fetch_add(1, Relaxed);
            }
            if span
                .status
                .as_ref()
                .is_some_and(|s| s.code == SpanStatus::Error as i32)
            {
                self.error_spans.fetch_add(1, Relaxed);
            }
            self.span_events
                .fetch_add(span.events.len() as u64, Relaxed);
        }
    }
}

async fn traces(
    State(counters): State<Arc<Counters>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()) != Some(b"application/x-protobuf") {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    }
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    counters.count(&request);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

/// The receiver's application.
pub fn router(counters: Arc<Counters>) -> Router {
    Router::new()
        .route("/v1/traces", post(traces))
        .with_state(counters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

    #[test]
    fn counts_spans_by_kind_status_and_events() {
        let span = |kind: SpanKind, error: bool, events: usize| Span {
            kind: kind as i32,
            status: error.then(|| Status {
                code: SpanStatus::Error as i32,
                ..Default::default()
            }),
            events: vec![Default::default(); events],
            ..Default::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![
                        span(SpanKind::Server, false, 0),
                        span(SpanKind::Server, true, 1),
                        span(SpanKind::Client, false, 0),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let counters = Counters::default();
        counters.count(&request);
        assert_eq!(
            counters.snapshot(),
            Counts {
                requests: 1,
                spans: 3,
                server_spans: 2,
                client_spans: 1,
                error_spans: 1,
                span_events: 1,
            }
        );
    }
}
