//! The service under test, in one configuration (see `app.rs`). Prints
//! `listening on 127.0.0.1:PORT` once it accepts connections; SIGTERM or
//! Ctrl-C stops it gracefully and flushes its instrumentation.

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use clap::Parser;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use profilis_bench_service::app::{self, AppState, Config};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

#[derive(Parser, Debug)]
#[command(about = "The service of the bench-service benchmark")]
struct Args {
    /// How the service is instrumented.
    #[arg(long, value_enum)]
    config: Config,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Tokio worker threads (default: one per CPU).
    #[arg(long)]
    workers: Option<usize>,
    /// OTLP/HTTP traces endpoint (`otel`), e.g. http://127.0.0.1:4318/v1/traces.
    #[arg(long)]
    otlp_endpoint: Option<String>,
    /// JSON log file (`json-log`).
    #[arg(long)]
    log_file: Option<PathBuf>,
}

/// What must stay alive while serving and be flushed at the end.
enum Instrumentation {
    None,
    Otel(opentelemetry_sdk::trace::SdkTracerProvider),
    JsonLog(tracing_appender::non_blocking::WorkerGuard),
    Prometheus(metrics_exporter_prometheus::PrometheusHandle),
}

/// Installs the configuration's instrumentation. Runs before the tokio
/// runtime exists: the OTLP exporter's blocking HTTP client may not be
/// created inside one.
fn instrument(args: &Args) -> anyhow::Result<Instrumentation> {
    Ok(match args.config {
        Config::Bare => Instrumentation::None,
        Config::Profilis => {
            profilis::init().context("opening the Profilis ring (PROFILIS_RING)")?;
            Instrumentation::None
        }
        Config::Otel => {
            let endpoint = args
                .otlp_endpoint
                .as_deref()
                .context("--otlp-endpoint is required with --config otel")?;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(endpoint)
                .build()
                .context("building the OTLP span exporter")?;
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name("bench-service")
                        .build(),
                )
                .build();
            let tracer = provider.tracer("bench-service");
            tracing_subscriber::registry()
                .with(tracing_opentelemetry::layer().with_tracer(tracer))
                .try_init()
                .context("installing the tracing subscriber")?;
            Instrumentation::Otel(provider)
        }
        Config::JsonLog => {
            let path = args
                .log_file
                .as_deref()
                .context("--log-file is required with --config json-log")?;
            let dir = path.parent().context("--log-file has no directory")?;
            let name = path.file_name().context("--log-file has no file name")?;
            let (writer, guard) =
                tracing_appender::non_blocking(tracing_appender::rolling::never(dir, name));
            tracing_subscriber::registry()
                .with(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .with_current_span(true)
                        .with_span_list(false)
                        .with_writer(writer),
                )
                .try_init()
                .context("installing the tracing subscriber")?;
            Instrumentation::JsonLog(guard)
        }
        Config::Prometheus => {
            let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(
                        "http_request_duration_seconds".to_string(),
                    ),
                    &[
                        0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
                        0.05, 0.1, 0.25, 0.5, 1.0,
                    ],
                )
                .context("setting the histogram buckets")?
                .install_recorder()
                .context("installing the Prometheus recorder")?;
            Instrumentation::Prometheus(handle)
        }
    })
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let instrumentation = instrument(&args)?;
    let prometheus = match &instrumentation {
        Instrumentation::Prometheus(handle) => Some(handle.clone()),
        _ => None,
    };
    let state = Arc::new(AppState::new(args.config, prometheus.clone())?);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(workers) = args.workers {
        runtime.worker_threads(workers);
    }
    let runtime = runtime.build().context("starting the tokio runtime")?;
    runtime.block_on(async {
        if let Some(handle) = prometheus {
            // Without the exporter's HTTP listener, upkeep (histogram
            // draining) is the application's to schedule.
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    handle.run_upkeep();
                }
            });
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .context("binding 127.0.0.1")?;
        let addr = listener.local_addr()?;
        println!("listening on {addr}");
        std::io::stdout().flush()?;
        // As services are deployed: no Nagle delay on responses.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app::router(state))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving")
    })?;
    drop(runtime);
    match instrumentation {
        Instrumentation::Otel(provider) => {
            provider.shutdown().context("flushing the OTLP exporter")?
        }
        Instrumentation::JsonLog(guard) => drop(guard),
        Instrumentation::None | Instrumentation::Prometheus(_) => {}
    }
    Ok(())
}
