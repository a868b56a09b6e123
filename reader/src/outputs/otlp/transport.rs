//! Sending encoded OTLP requests: gRPC (tonic, over one HTTP/2 connection)
//! or HTTP/protobuf (hyper, HTTP/1.1 with keep-alive), and which failures
//! are worth a retry.
//!
//! Requests are encoded once by the sender ([`prost::Message::encode_to_vec`])
//! and the bytes are sent as they are, so a retry re-sends the same bytes
//! without converting the spans again; the gRPC path uses tonic's generic
//! unary call with a pass-through codec on the official method paths
//! (`/opentelemetry.proto.collector.trace.v1.TraceService/Export`, ...).
//!
//! Retryable, as the OTLP specification lists them: gRPC `UNAVAILABLE`,
//! `RESOURCE_EXHAUSTED`, `DEADLINE_EXCEEDED`, `ABORTED`, `CANCELLED`,
//! `OUT_OF_RANGE`, `DATA_LOSS`; HTTP 429, 502, 503 and 504 (honouring a
//! `Retry-After` given in seconds); connection errors and timeouts. Every
//! other failure is final for the request.
//!
//! Every request names the reader in `User-Agent` ([`USER_AGENT`]; tonic
//! appends its own name and version over gRPC); a `--otlp-header
//! user-agent=...` replaces it over HTTP.

use super::{OtlpHeader, OtlpOptions, OtlpProtocol};
use anyhow::{anyhow, bail};
use bytes::{Buf, BufMut, Bytes};
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::Uri;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use std::marker::PhantomData;
use std::time::Duration;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::transport::{Channel, Endpoint};

/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("profilis-reader/", env!("CARGO_PKG_VERSION"));

/// What a request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// `ExportTraceServiceRequest`.
    Traces,
    /// `ExportMetricsServiceRequest`.
    Metrics,
}

/// The receiver accepted the request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Spans or data points it rejected anyway (partial success).
    pub rejected: u64,
    /// Its message about them.
    pub message: String,
}

/// A failed attempt.
#[derive(Clone, Debug)]
pub struct Failure {
    /// Whether trying again may succeed.
    pub retryable: bool,
    /// How long the receiver asked us to wait.
    pub retry_after: Option<Duration>,
    /// What went wrong (never contains header values).
    pub message: String,
}

impl Failure {
    fn retryable(message: String) -> Failure {
        Failure {
            retryable: true,
            retry_after: None,
            message,
        }
    }
}

/// Checked connection settings.
#[derive(Clone)]
pub struct Config {
    protocol: OtlpProtocol,
    grpc: Option<Uri>,
    traces: Uri,
    metrics: Uri,
    headers: Vec<OtlpHeader>,
    timeout: Duration,
}

impl Config {
    /// Checks the endpoint and headers.
    pub fn new(options: &OtlpOptions) -> anyhow::Result<Config> {
        let endpoint = options.endpoint.trim();
        let uri: Uri = endpoint
            .parse()
            .map_err(|e| anyhow!("--otlp-endpoint {endpoint:?} is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => bail!(
                "--otlp-endpoint {endpoint}: https is not supported; send to an OpenTelemetry \
                 Collector on this host or network over plain http and let it forward with TLS \
                 (see docs/scale.md)"
            ),
            _ => bail!(
                "--otlp-endpoint {endpoint:?}: give an http:// URL, e.g. http://127.0.0.1:4317 \
                 (gRPC) or http://127.0.0.1:4318 (HTTP)"
            ),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow!("--otlp-endpoint {endpoint:?} has no host"))?
            .as_str()
            .to_string();
        let path = uri.path().trim_end_matches('/');
        let base = path
            .strip_suffix("/v1/traces")
            .or_else(|| path.strip_suffix("/v1/metrics"))
            .unwrap_or(path);
        let signal_uri = |suffix: &str| -> anyhow::Result<Uri> {
            format!("http://{authority}{base}{suffix}")
                .parse()
                .map_err(|e| anyhow!("--otlp-endpoint {endpoint:?}: {e}"))
        };
        let grpc = match options.protocol {
            OtlpProtocol::Grpc => {
                if !path.is_empty() {
                    bail!(
                        "--otlp-endpoint {endpoint:?}: a gRPC endpoint is host:port only (no path); \
                         for OTLP/HTTP pass --otlp-protocol http"
                    );
                }
                Some(signal_uri("")?)
            }
            OtlpProtocol::Http => None,
        };
        for h in &options.headers {
            AsciiMetadataKey::from_bytes(h.name.as_bytes())
                .map_err(|_| anyhow!("--otlp-header {}: not a valid header name", h.name))?;
            let visible = h.value.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
            if !visible {
                bail!("--otlp-header {}: the value must be visible ASCII", h.name);
            }
            AsciiMetadataValue::try_from(h.value.as_str()).map_err(|_| {
                anyhow!("--otlp-header {}: the value must be visible ASCII", h.name)
            })?;
        }
        Ok(Config {
            protocol: options.protocol,
            grpc,
            traces: signal_uri("/v1/traces")?,
            metrics: signal_uri("/v1/metrics")?,
            headers: options.headers.clone(),
            timeout: options.timeout,
        })
    }

    /// Where a signal goes, for messages.
    pub fn target(&self, signal: Signal) -> String {
        match (&self.grpc, signal) {
            (Some(uri), _) => uri.to_string(),
            (None, Signal::Traces) => self.traces.to_string(),
            (None, Signal::Metrics) => self.metrics.to_string(),
        }
    }
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

#[derive(Clone)]
enum Inner {
    Grpc {
        client: tonic::client::Grpc<Channel>,
        metadata: Vec<(AsciiMetadataKey, AsciiMetadataValue)>,
    },
    Http {
        client: HttpClient,
        headers: Vec<(HeaderName, HeaderValue)>,
    },
}

/// A connection to the receiver (made lazily, re-made after failures);
/// clones share it.
#[derive(Clone)]
pub struct Client {
    inner: Inner,
    config: Config,
}

impl Client {
    /// A client for `config`; must be called inside a tokio runtime.
    pub fn new(config: &Config) -> anyhow::Result<Client> {
        let inner = match config.protocol {
            OtlpProtocol::Grpc => {
                let uri = config.grpc.clone().expect("checked in Config::new");
                let channel = Endpoint::from(uri)
                    .user_agent(USER_AGENT)?
                    .connect_timeout(config.timeout)
                    .timeout(config.timeout)
                    .tcp_nodelay(true)
                    .connect_lazy();
                let mut metadata = Vec::new();
                for h in &config.headers {
                    let key = AsciiMetadataKey::from_bytes(h.name.as_bytes())?;
                    let mut value = AsciiMetadataValue::try_from(h.value.as_str())?;
                    value.set_sensitive(true);
                    metadata.push((key, value));
                }
                Inner::Grpc {
                    client: tonic::client::Grpc::new(channel),
                    metadata,
                }
            }
            OtlpProtocol::Http => {
                let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
                connector.set_nodelay(true);
                connector.set_connect_timeout(Some(config.timeout));
                let client = hyper_util::client::legacy::Client::builder(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .build(connector);
                let mut headers = Vec::new();
                for h in &config.headers {
                    let name = HeaderName::from_bytes(h.name.as_bytes())?;
                    let mut value = HeaderValue::from_str(&h.value)?;
                    value.set_sensitive(true);
                    headers.push((name, value));
                }
                Inner::Http { client, headers }
            }
        };
        Ok(Client {
            inner,
            config: config.clone(),
        })
    }

    /// Where a signal goes, for messages.
    pub fn target(&self, signal: Signal) -> String {
        self.config.target(signal)
    }

    /// Sends one encoded request.
    pub async fn send(&mut self, signal: Signal, body: Bytes) -> Result<Accepted, Failure> {
        let timeout = self.config.timeout;
        let attempt = async {
            match &mut self.inner {
                Inner::Grpc { client, metadata } => {
                    grpc_send(client, metadata, signal, body, timeout).await
                }
                Inner::Http { client, headers } => {
                    let uri = match signal {
                        Signal::Traces => self.config.traces.clone(),
                        Signal::Metrics => self.config.metrics.clone(),
                    };
                    http_send(client, headers, uri, signal, body).await
                }
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(Failure::retryable(format!(
                "no answer from {} within {timeout:?}",
                self.config.target(signal)
            ))),
        }
    }
}

async fn grpc_send(
    client: &mut tonic::client::Grpc<Channel>,
    metadata: &[(AsciiMetadataKey, AsciiMetadataValue)],
    signal: Signal,
    body: Bytes,
    timeout: Duration,
) -> Result<Accepted, Failure> {
    client
        .ready()
        .await
        .map_err(|e| Failure::retryable(format!("connecting: {}", error_chain(&e))))?;
    let mut request = tonic::Request::new(body);
    request.set_timeout(timeout);
    for (k, v) in metadata {
        request.metadata_mut().insert(k.clone(), v.clone());
    }
    let result = match signal {
        Signal::Traces => client
            .unary(
                request,
                tonic::codegen::http::uri::PathAndQuery::from_static(
                    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                ),
                RawCodec::<ExportTraceServiceResponse>::default(),
            )
            .await
            .map(|r| {
                let p = r.into_inner().partial_success.unwrap_or_default();
                Accepted {
                    rejected: p.rejected_spans.max(0) as u64,
                    message: p.error_message,
                }
            }),
        Signal::Metrics => client
            .unary(
                request,
                tonic::codegen::http::uri::PathAndQuery::from_static(
                    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                ),
                RawCodec::<ExportMetricsServiceResponse>::default(),
            )
            .await
            .map(|r| {
                let p = r.into_inner().partial_success.unwrap_or_default();
                Accepted {
                    rejected: p.rejected_data_points.max(0) as u64,
                    message: p.error_message,
                }
            }),
    };
    result.map_err(|status| {
        use tonic::Code;
        let retryable = matches!(
            status.code(),
            Code::Unavailable
                | Code::ResourceExhausted
                | Code::DeadlineExceeded
                | Code::Aborted
                | Code::Cancelled
                | Code::OutOfRange
                | Code::DataLoss
        );
        let mut message = format!("gRPC status {:?}: {}", status.code(), status.message());
        if let Some(source) = std::error::Error::source(&status) {
            message.push_str(": ");
            message.push_str(&error_chain(source));
        }
        Failure {
            retryable,
            retry_after: None,
            message,
        }
    })
}

async fn http_send(
    client: &HttpClient,
    headers: &[(HeaderName, HeaderValue)],
    uri: Uri,
    signal: Signal,
    body: Bytes,
) -> Result<Accepted, Failure> {
    let mut request = hyper::Request::post(uri.clone())
        .header(CONTENT_TYPE, "application/x-protobuf")
        .header(hyper::header::USER_AGENT, USER_AGENT)
        .body(Full::new(body))
        .map_err(|e| Failure {
            retryable: false,
            retry_after: None,
            message: format!("building the request: {e}"),
        })?;
    for (name, value) in headers {
        request.headers_mut().insert(name.clone(), value.clone());
    }
    let response = client
        .request(request)
        .await
        .map_err(|e| Failure::retryable(format!("POST {uri}: {}", error_chain(&e))))?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(hyper::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let textual = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/") || t.contains("json"));
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| Failure::retryable(format!("POST {uri}: reading the answer: {e}")))?
        .to_bytes();
    if status.is_success() {
        if body.is_empty() {
            return Ok(Accepted::default());
        }
        return decode_response(signal, body).map_err(|e| Failure {
            retryable: false,
            retry_after: None,
            message: format!("POST {uri}: undecodable answer: {e}"),
        });
    }
    let retryable = matches!(status.as_u16(), 429 | 502 | 503 | 504);
    let mut message = format!("POST {uri}: HTTP {status}");
    if textual && !body.is_empty() {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        message.push_str(": ");
        message.push_str(text.trim());
    }
    Err(Failure {
        retryable,
        retry_after: if retryable { retry_after } else { None },
        message,
    })
}

fn decode_response(signal: Signal, body: Bytes) -> Result<Accepted, prost::DecodeError> {
    use prost::Message;
    Ok(match signal {
        Signal::Traces => {
            let p = ExportTraceServiceResponse::decode(body)?
                .partial_success
                .unwrap_or_default();
            Accepted {
                rejected: p.rejected_spans.max(0) as u64,
                message: p.error_message,
            }
        }
        Signal::Metrics => {
            let p = ExportMetricsServiceResponse::decode(body)?
                .partial_success
                .unwrap_or_default();
            Accepted {
                rejected: p.rejected_data_points.max(0) as u64,
                message: p.error_message,
            }
        }
    })
}

/// An error and its sources, `: `-separated.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// Sends pre-encoded request bytes and decodes the protobuf answer `R`.
struct RawCodec<R>(PhantomData<R>);

impl<R> Default for RawCodec<R> {
    fn default() -> Self {
        RawCodec(PhantomData)
    }
}

impl<R: prost::Message + Default + Send + 'static> Codec for RawCodec<R> {
    type Encode = Bytes;
    type Decode = R;
    type Encoder = RawEncoder;
    type Decoder = ProstDecoder<R>;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder(PhantomData)
    }
}

struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

struct ProstDecoder<R>(PhantomData<R>);

impl<R: prost::Message + Default> Decoder for ProstDecoder<R> {
    type Item = R;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<R>, tonic::Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        R::decode(bytes)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("undecodable answer: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: &str, protocol: OtlpProtocol) -> anyhow::Result<Config> {
        Config::new(&OtlpOptions::new(endpoint, protocol))
    }

    #[test]
    fn endpoints_map_to_signal_urls() {
        let c = config("http://collector:4318", OtlpProtocol::Http).unwrap();
        assert_eq!(c.target(Signal::Traces), "http://collector:4318/v1/traces");
        assert_eq!(
            c.target(Signal::Metrics),
            "http://collector:4318/v1/metrics"
        );
        let c = config("http://gw:80/otlp/", OtlpProtocol::Http).unwrap();
        assert_eq!(c.target(Signal::Traces), "http://gw:80/otlp/v1/traces");
        let c = config("http://gw:4318/v1/traces", OtlpProtocol::Http).unwrap();
        assert_eq!(c.target(Signal::Metrics), "http://gw:4318/v1/metrics");
        let c = config("http://127.0.0.1:4317", OtlpProtocol::Grpc).unwrap();
        assert_eq!(c.target(Signal::Traces), "http://127.0.0.1:4317/");
    }

    #[test]
    fn bad_endpoints_are_refused_clearly() {
        let err = |e: &str, p| config(e, p).err().unwrap().to_string();
        assert!(err("https://x:4317", OtlpProtocol::Grpc).contains("https is not supported"));
        assert!(err("localhost:4317", OtlpProtocol::Grpc).contains("http://"));
        assert!(err("http://x:4317/v1/traces", OtlpProtocol::Grpc).contains("no path"));
        assert!(err("not a url", OtlpProtocol::Http).contains("not a URL"));
        let mut options = OtlpOptions::new("http://x:4317", OtlpProtocol::Grpc);
        options.headers.push(OtlpHeader {
            name: "authorization".into(),
            value: "Bearer sécret".into(),
        });
        let e = Config::new(&options).err().unwrap().to_string();
        assert!(e.contains("visible ASCII") && !e.contains("sécret"), "{e}");
    }
}
