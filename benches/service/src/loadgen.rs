//! The load generator: HTTP/1.1 keep-alive connections over real sockets,
//! each sending one request at a time.
//!
//! - [`saturate`]: closed loop, every connection sends its next request as
//!   soon as the previous response is read; requests per second is the
//!   saturation throughput.
//! - [`fixed_rate`]: each connection has a schedule (`rate / connections`
//!   requests per second, phases spread over the interval). Latency is
//!   counted from the scheduled send time whenever the previous response
//!   came back too late to send on time (coordinated omission: a stalled
//!   server is charged for the requests it held up, as wrk2 does); when the
//!   connection was idle and waited for its slot, from the actual send time
//!   (so the timer's own lateness, a millisecond with tokio, is not charged
//!   to the server).
//!
//! The request mix, by request number: 6 in 10 `GET /users/{id}` (path
//! parameter, SQLite query), 3 in 10 `POST /orders` (JSON body), 1 in 10
//! `GET /fail` (a 500).

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Request `n` of a connection: method, path, body and the expected status.
pub fn request(n: u64) -> (Method, String, Option<Bytes>, StatusCode) {
    match n % 10 {
        0..=5 => {
            let id = (n.wrapping_mul(7919) % crate::app::USERS as u64) + 1;
            (Method::GET, format!("/users/{id}"), None, StatusCode::OK)
        }
        6..=8 => {
            let body = format!(
                "{{\"item\":\"sku-{}\",\"quantity\":{},\"unit_cents\":1299}}",
                n % 97,
                n % 5 + 1
            );
            (
                Method::POST,
                "/orders".to_string(),
                Some(Bytes::from(body)),
                StatusCode::CREATED,
            )
        }
        _ => (
            Method::GET,
            "/fail".to_string(),
            None,
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    }
}

/// One keep-alive connection.
struct Conn {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1 handshake")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn { addr, sender })
    }

    /// Sends request `n`; whether the status was the expected one.
    async fn send(&mut self, n: u64) -> anyhow::Result<bool> {
        let (method, path, body, expected) = request(n);
        let (status, _) = self.call(method, &path, body).await?;
        Ok(status == expected)
    }

    /// Sends a request; the status and body of the response.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.addr.to_string());
        if body.is_some() {
            builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = builder.body(Full::new(body.unwrap_or_default()))?;
        self.sender.ready().await.context("connection closed")?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// `GET path` on a fresh connection: the status and body.
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(StatusCode, Bytes)> {
    Conn::open(addr).await?.call(Method::GET, path, None).await
}

/// What a phase did.
#[derive(Debug)]
pub struct Outcome {
    /// Responses received.
    pub requests: u64,
    /// Of them, `GET /users/{id}` (one query each).
    pub reads: u64,
    /// Of them, `GET /fail` (one error each).
    pub failures: u64,
    /// Responses with another status than the route's expected one.
    pub unexpected: u64,
    /// Requests that failed on the connection (then reopened).
    pub transport_errors: u64,
    /// Length of the phase.
    pub elapsed: Duration,
    /// Latency in ns (fixed rate; empty at saturation).
    pub latency: Histogram<u64>,
}

impl Outcome {
    fn new() -> Outcome {
        Outcome {
            requests: 0,
            reads: 0,
            failures: 0,
            unexpected: 0,
            transport_errors: 0,
            elapsed: Duration::ZERO,
            latency: latency_histogram(),
        }
    }

    fn merge(&mut self, other: Outcome) -> anyhow::Result<()> {
        self.requests += other.requests;
        self.reads += other.reads;
        self.failures += other.failures;
        self.unexpected += other.unexpected;
        self.transport_errors += other.transport_errors;
        self.latency
            .add(&other.latency)
            .context("merging latency histograms")
    }

    fn count(&mut self, n: u64, expected: bool) {
        self.requests += 1;
        self.unexpected += u64::from(!expected);
        match n % 10 {
            0..=5 => self.reads += 1,
            9 => self.failures += 1,
            _ => {}
        }
    }

    /// Responses per second.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn latency_histogram() -> Histogram<u64> {
    // 100 ns to 60 s at 3 significant digits.
    Histogram::new_with_bounds(100, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Runs `connections` closed-loop connections for `duration`.
pub async fn saturate(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(connections);
    for c in 0..connections {
        tasks.push(tokio::spawn(async move {
            let mut outcome = Outcome::new();
            let mut conn = Conn::open(addr).await?;
            let mut n = c as u64 * 7;
            while Instant::now() < deadline {
                match conn.send(n).await {
                    Ok(expected) => {
                        outcome.count(n, expected);
                    }
                    Err(_) => {
                        outcome.transport_errors += 1;
                        conn = Conn::open(addr).await?;
                    }
                }
                n += 1;
            }
            anyhow::Ok(outcome)
        }));
    }
    let mut total = Outcome::new();
    for task in tasks {
        total.merge(task.await.context("load task panicked")??)?;
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

/// Runs `connections` connections at `rate` requests per second in all for
/// `duration`, recording latencies (see the module docs).
pub async fn fixed_rate(
    addr: SocketAddr,
    connections: usize,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    anyhow::ensure!(rate > 0.0, "the fixed rate must be positive");
    let interval = Duration::from_secs_f64(connections as f64 / rate);
    let start = Instant::now() + Duration::from_millis(5);
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(connections);
    for c in 0..connections {
        tasks.push(tokio::spawn(async move {
            let mut outcome = Outcome::new();
            let mut conn = Conn::open(addr).await?;
            let mut scheduled = start + interval.mul_f64(c as f64 / connections as f64);
            let mut n = c as u64 * 7;
            while scheduled < deadline {
                let now = Instant::now();
                let counted_from = if now >= scheduled {
                    // Late: the previous response held this request up.
                    scheduled
                } else {
                    tokio::time::sleep_until(scheduled.into()).await;
                    Instant::now()
                };
                match conn.send(n).await {
                    Ok(expected) => {
                        outcome.count(n, expected);
                        let ns = counted_from.elapsed().as_nanos() as u64;
                        outcome.latency.saturating_record(ns.max(100));
                    }
                    Err(_) => {
                        outcome.transport_errors += 1;
                        conn = Conn::open(addr).await?;
                    }
                }
                n += 1;
                scheduled += interval;
            }
            anyhow::Ok(outcome)
        }));
    }
    let mut total = Outcome::new();
    for task in tasks {
        total.merge(task.await.context("load task panicked")??)?;
    }
    // The schedule spans `duration`: the achieved rate is over it.
    total.elapsed = duration;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_six_reads_three_writes_one_failure_in_ten() {
        let statuses: Vec<StatusCode> = (0..10).map(|n| request(n).3).collect();
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 6);
        assert_eq!(
            statuses
                .iter()
                .filter(|s| **s == StatusCode::CREATED)
                .count(),
            3
        );
        assert_eq!(
            statuses
                .iter()
                .filter(|s| **s == StatusCode::INTERNAL_SERVER_ERROR)
                .count(),
            1
        );
        let (_, path, _, _) = request(0);
        assert_eq!(path, "/users/1");
        let (method, _, body, _) = request(6);
        assert_eq!(method, Method::POST);
        let body: serde_json::Value =
            serde_json::from_slice(&body.expect("a body")).expect("JSON body");
        assert_eq!(body["unit_cents"], 1299);
    }
}
