//! OTLP export throughput of one reader to a local receiver, and whether it
//! slows the drain.
//!
//! A ring is filled with a REQ/FN/DB mix (every event becomes a span; not
//! timed). Then the drain loop reads it with statistics and the JSONL file
//! exporter, with and without the OTLP exporter (gRPC, batches of 2048) to a
//! receiver in this process.
//!
//! ```text
//! cargo bench -p profilis-reader --bench otlp_throughput
//! PROFILIS_BENCH_EVENTS=262144 cargo bench -p profilis-reader --bench otlp_throughput
//! PROFILIS_BENCH_RECEIVER=decode cargo bench -p profilis-reader --bench otlp_throughput
//! ```
//!
//! The receiver counts spans: it decodes the request envelope with prost
//! down to each span's bytes, without building the spans, so that on a
//! small machine the receiver's own decoding does not eat the CPU the
//! reader is measured with. `PROFILIS_BENCH_RECEIVER=decode` uses the
//! generated `opentelemetry-proto` `TraceService` server instead, which
//! decodes every span and attribute like a collector.
//!
//! Per configuration (best of the rounds): the drain rate (events/s until
//! the last batch was handed to the exporters) and, with OTLP, the spans/s
//! the receiver decoded (from the start of the drain to the last span
//! received) and the spans dropped. `queue = all` holds every span (nothing
//! may drop: the sender's throughput); `queue = default` is the default
//! 100 000-span queue (the drain outruns the network and the excess is
//! dropped and counted, never waited for). Load averages are printed before
//! and after: the machine is shared.

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use profilis::{Fields, Kind, Method, Ring, RingOptions};
use profilis_reader::app::drain::{Drain, DrainOptions};
use profilis_reader::ingest::{Batch, RingContext};
use profilis_reader::outputs::jsonl::{JsonlExporter, JsonlOptions};
use profilis_reader::outputs::otlp::{OtlpExporter, OtlpOptions, OtlpProtocol};
use profilis_reader::outputs::{Exported, Exporter};
use profilis_reader::views::ExporterStatus;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;

fn fill(ring: &Ring, events: u64) {
    let routes: Vec<_> = ["/api/users/{id}", "/api/orders", "/api/search", "/health"]
        .iter()
        .map(|r| ring.intern(r))
        .collect();
    let function = ring.intern("load_user");
    let query = ring.intern("SELECT * FROM users WHERE id = ?");
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let root = profilis::SpanContext::NONE.child();
    let _enter = profilis::context::enter(root);
    for _ in 0..events {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        match rng % 100 {
            0..=59 => {
                let fields = Fields {
                    method: Method::Get,
                    status: if rng.is_multiple_of(50) { 500 } else { 200 },
                    dur_ns: 200_000 + (rng >> 32) % 20_000_000,
                    value: (rng >> 40) % 4096,
                    value2: (rng >> 28) % 65536,
                    ..Fields::default()
                };
                ring.record(
                    Kind::Req,
                    routes[(rng >> 8) as usize % routes.len()],
                    &fields,
                );
            }
            60..=84 => {
                ring.emit_fn(function, 10_000 + (rng >> 32) % 2_000_000, false);
            }
            _ => {
                ring.emit_db(query, 50_000 + (rng >> 32) % 5_000_000, (rng >> 16) % 50);
            }
        }
    }
}

/// Counts spans and remembers when the last one arrived.
#[derive(Clone, Default)]
struct Counting {
    spans: Arc<AtomicU64>,
    last: Arc<Mutex<Option<Instant>>>,
}

impl Counting {
    fn add(&self, n: usize) {
        self.spans.fetch_add(n as u64, Relaxed);
        *self.last.lock().unwrap() = Some(Instant::now());
    }
}

/// The decoding receiver: the generated `TraceService` server, which
/// decodes every span into `opentelemetry-proto` messages as a collector
/// does.
#[tonic::async_trait]
impl TraceService for Counting {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let n: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.add(n);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// `ExportTraceServiceRequest` with each span left as its encoded bytes:
/// the counting receiver checks the framing down to the spans and counts
/// them without building them.
#[derive(Clone, PartialEq, prost::Message)]
struct CountRequest {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<CountResourceSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CountResourceSpans {
    #[prost(message, repeated, tag = "2")]
    scope_spans: Vec<CountScopeSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CountScopeSpans {
    #[prost(bytes = "bytes", repeated, tag = "2")]
    spans: Vec<bytes::Bytes>,
}

/// The counting receiver: the `TraceService/Export` method over tonic's
/// gRPC server, decoding [`CountRequest`].
#[derive(Clone)]
struct CountingService(Counting);

impl tonic::server::NamedService for CountingService {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl tonic::server::UnaryService<CountRequest> for CountingService {
    type Response = ExportTraceServiceResponse;
    type Future = std::future::Ready<Result<tonic::Response<Self::Response>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<CountRequest>) -> Self::Future {
        let n = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.add(n);
        std::future::ready(Ok(tonic::Response::new(
            ExportTraceServiceResponse::default(),
        )))
    }
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

use tonic::codegen::http;

impl<B> tonic::codegen::Service<http::Request<B>> for CountingService
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = self.clone();
        Box::pin(async move {
            let codec =
                tonic_prost::ProstCodec::<ExportTraceServiceResponse, CountRequest>::default();
            let mut grpc =
                tonic::server::Grpc::new(codec).apply_max_message_size_config(Some(64 << 20), None);
            Ok(grpc.unary(method, request).await)
        })
    }
}

/// The last exporter in the list: notes when the drain handed over its
/// last event.
struct Probe {
    events: u64,
    target: u64,
    done: Arc<Mutex<Option<Instant>>>,
}

impl Exporter for Probe {
    fn name(&self) -> &'static str {
        "probe"
    }

    fn export(&mut self, _ctx: &mut RingContext, batch: &Batch<'_>) -> Exported {
        self.events += batch.events().len() as u64;
        if self.events >= self.target {
            *self.done.lock().unwrap() = Some(Instant::now());
        }
        Exported::default()
    }

    fn status(&self) -> ExporterStatus {
        ExporterStatus::default()
    }
}

struct Outcome {
    drain_rate: f64,
    spans_rate: f64,
    dropped: u64,
    /// CPU ns per event: drain thread, OTLP sender threads, receiver.
    cpu_ns: [f64; 3],
}

/// CPU time (ns) used so far: by the drain (this thread), by the OTLP
/// sender threads (the process' total, which keeps the time of threads
/// that have exited, less the others) and by the receiver's runtime
/// (`tokio-rt-worker`).
fn thread_cpu_ns() -> [u64; 3] {
    let tick_ns = 1e9 / profilis_reader::support::cpu::clock_ticks_per_sec();
    let me = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    let (mut drain, mut receiver) = (0u64, 0u64);
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let comm = &stat[open + 1..close];
            let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            let ticks =
                fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
            let ns = (ticks as f64 * tick_ns) as u64;
            let tid = task.file_name().to_string_lossy().into_owned();
            if Some(&tid) == me.as_ref() {
                drain += ns;
            } else if comm.starts_with("tokio-rt") {
                receiver += ns;
            }
        }
    }
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let total = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        (us(usage.ru_utime) + us(usage.ru_stime)) * 1000
    };
    [drain, total.saturating_sub(drain + receiver), receiver]
}

#[derive(Clone, Copy, PartialEq)]
enum Otlp {
    Off,
    QueueAll,
    QueueDefault,
}

fn round(dir: &std::path::Path, events: u64, otlp: Otlp, receiver: &(Counting, String)) -> Outcome {
    let ring_path = dir.join("bench.ring");
    let _ = std::fs::remove_file(&ring_path);
    let ring = Ring::create_or_open(
        &ring_path,
        // One lane: this one thread fills the whole ring.
        RingOptions::default()
            .capacity(events.next_power_of_two())
            .lanes(1),
    )
    .expect("creating the bench ring");
    fill(&ring, events);
    let out = dir.join("jsonl");
    let _ = std::fs::remove_dir_all(&out);
    let mut options = JsonlOptions::new(&out);
    options.rotate_bytes = 0;
    let mut exporters: Vec<Box<dyn Exporter>> = vec![Box::new(
        JsonlExporter::new(options).expect("JSONL exporter"),
    )];
    let (counting, endpoint) = receiver;
    counting.spans.store(0, Relaxed);
    *counting.last.lock().unwrap() = None;
    let mut shared = None;
    if otlp != Otlp::Off {
        let mut options = OtlpOptions::new(endpoint, OtlpProtocol::Grpc);
        options.metrics_interval = Duration::ZERO;
        options.timeout = Duration::from_secs(60);
        if otlp == Otlp::QueueAll {
            options.queue = events as usize;
        }
        let exporter = OtlpExporter::new(options).expect("OTLP exporter");
        shared = Some(exporter.counters());
        exporters.push(Box::new(exporter));
    }
    let done = Arc::new(Mutex::new(None));
    exporters.push(Box::new(Probe {
        events: 0,
        target: events,
        done: done.clone(),
    }));
    let drain = Drain::new(
        DrainOptions {
            rings: vec![ring_path.clone()],
            once: true,
            ..DrainOptions::default()
        },
        exporters,
        Arc::new(AtomicBool::new(false)),
    )
    .expect("attaching");
    let cpu_before = thread_cpu_ns();
    let start = Instant::now();
    let report = drain.run();
    assert_eq!(report.rings[0].received, events, "every event drained");
    let drained_at = done.lock().unwrap().expect("the probe saw every event");
    let drain_rate = events as f64 / drained_at.duration_since(start).as_secs_f64();
    let (mut spans_rate, mut dropped) = (0.0, 0);
    if let Some(shared) = shared {
        let c = &shared.counters;
        dropped = c.dropped.load(Relaxed);
        let received = counting.spans.load(Relaxed);
        assert_eq!(c.failed.load(Relaxed), 0, "no failures to a local receiver");
        assert_eq!(received + dropped, events, "every span received or dropped");
        let last = counting.last.lock().unwrap().expect("spans received");
        spans_rate = received as f64 / last.duration_since(start).as_secs_f64();
    }
    let cpu_after = thread_cpu_ns();
    let mut cpu_ns = [0.0; 3];
    for i in 0..3 {
        cpu_ns[i] = cpu_after[i].saturating_sub(cpu_before[i]) as f64 / events as f64;
    }
    drop(ring);
    let _ = std::fs::remove_file(&ring_path);
    let _ = std::fs::remove_dir_all(&out);
    Outcome {
        drain_rate,
        spans_rate,
        dropped,
        cpu_ns,
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn start_receiver(decode: bool) -> (tokio::runtime::Runtime, Counting, String) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("receiver runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("binding the receiver");
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let counting = Counting::default();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let mut server = tonic::transport::Server::builder();
    if decode {
        let service = TraceServiceServer::new(counting.clone()).max_decoding_message_size(64 << 20);
        runtime.spawn(server.add_service(service).serve_with_incoming(incoming));
    } else {
        let service = CountingService(counting.clone());
        runtime.spawn(server.add_service(service).serve_with_incoming(incoming));
    }
    (runtime, counting, endpoint)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / `cargo test --benches` smoke
    }
    let events: u64 = std::env::var("PROFILIS_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 20);
    let base = std::env::var_os("PROFILIS_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("profilis-otlp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating the bench directory");
    let decode = std::env::var("PROFILIS_BENCH_RECEIVER").is_ok_and(|v| v == "decode");
    let (_runtime, counting, endpoint) = start_receiver(decode);
    let receiver = (counting, endpoint);
    println!(
        "OTLP export (ring -> stats -> JSONL file [+ OTLP gRPC, batches of 2048, to a {} receiver in this process]), {events} events per round, {} cores, load average before: {}",
        if decode { "decoding" } else { "counting" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );
    for (label, otlp) in [
        ("stats + JSONL", Otlp::Off),
        ("stats + JSONL + OTLP (queue = all)", Otlp::QueueAll),
        ("stats + JSONL + OTLP (queue = default)", Otlp::QueueDefault),
    ] {
        let mut best = Outcome {
            drain_rate: 0.0,
            spans_rate: 0.0,
            dropped: 0,
            cpu_ns: [f64::MAX; 3],
        };
        for _ in 0..ROUNDS {
            let o = round(&dir, events, otlp, &receiver);
            best.drain_rate = best.drain_rate.max(o.drain_rate);
            if o.spans_rate > best.spans_rate {
                best.spans_rate = o.spans_rate;
                best.dropped = o.dropped;
            }
            for i in 0..3 {
                best.cpu_ns[i] = best.cpu_ns[i].min(o.cpu_ns[i]);
            }
        }
        let [drain_cpu, sender_cpu, receiver_cpu] = best.cpu_ns;
        if otlp == Otlp::Off {
            println!(
                "{label:<40} drain {:>9.0} events/s                                     CPU/event: drain {drain_cpu:>5.0} ns",
                best.drain_rate
            );
        } else {
            println!(
                "{label:<40} drain {:>9.0} events/s  received {:>9.0} spans/s  dropped {:>7}  CPU/event: drain {drain_cpu:>5.0} ns, OTLP sender {sender_cpu:>5.0} ns, receiver {receiver_cpu:>5.0} ns",
                best.drain_rate, best.spans_rate, best.dropped
            );
        }
    }
    println!("load average after: {}", loadavg());
    let _ = std::fs::remove_dir_all(&dir);
}
