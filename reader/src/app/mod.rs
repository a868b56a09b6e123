//! The application: the command line, and the wiring of the pipeline
//! (ingest -> window -> outputs, run by the [`drain`] loop) with the
//! dashboard and the signals. `profilis-reader` and `profilis-reader demo`
//! both run a [`reader::Reader`].

pub mod cli;
pub mod demo;
pub mod drain;
pub mod gc;
mod pace;
pub mod reader;
pub mod ui;
pub mod workload;

use crate::outputs::console::ConsoleExporter;
use crate::outputs::jsonl::{JsonlExporter, JsonlOptions};
use crate::outputs::otlp::{OtlpExporter, OtlpHeader, OtlpOptions};
use crate::outputs::web;
use crate::outputs::Exporter;
use crate::window::stats::StatsConfig;
use anyhow::{anyhow, Context};
use cli::{Cli, Command, OtlpArgs, ReaderArgs};
use drain::{DrainOptions, DrainReport, ProducerOptions};
use reader::{install_signal_handlers, Reader};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Runs the command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    init_logging();
    match cli.command {
        Some(Command::Demo(args)) => demo::run(args),
        Some(Command::Gc(args)) => gc::run(args),
        Some(Command::Workload(args)) => workload::run(args),
        None => run_reader(cli.reader),
    }
}

/// Sets up the log on stderr (see [`crate::support::log`]): `RUST_LOG`
/// if set, else the reader's messages and debug logging with
/// `PROFILIS_DEBUG=1`, else the reader's messages and other crates'
/// warnings.
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let debug = std::env::var("PROFILIS_DEBUG")
        .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("yes"));
    let filter = match EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(_) if debug => EnvFilter::new("info,profilis_reader=debug"),
        Err(_) => EnvFilter::new("warn,profilis_reader=info"),
    };
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .event_format(crate::support::log::Lines::default())
        .try_init();
}

/// Reads `PROFILIS_UI_TOKEN` and removes it from the environment, so that
/// processes the reader starts do not inherit it.
pub fn take_token_env() -> Option<String> {
    let value = std::env::var("PROFILIS_UI_TOKEN").ok();
    if value.is_some() {
        std::env::remove_var("PROFILIS_UI_TOKEN");
    }
    value
}

/// Drain options from the command line.
pub fn drain_options(args: &ReaderArgs) -> DrainOptions {
    DrainOptions {
        rings: args.rings.clone(),
        watch: args.watch.clone(),
        wait: args.wait,
        once: args.once,
        batch_max: args.batch_max as usize,
        flush_interval: args.flush_interval,
        liveness_interval: args.liveness_interval,
        max_rings: args.max_rings as usize,
        stats: StatsConfig {
            window_minutes: args.stats.window_minutes,
            max_errors: args.stats.max_errors,
            max_routes: args.stats.max_routes as usize,
            precision_ns: args.stats.precision_ns,
        },
        producers: ProducerOptions {
            postmortem_events: args.producers.postmortem_events as usize,
            max_workers: args.producers.max_workers as usize,
            process_interval: args.producers.process_interval,
        },
        keep_rings: args.keep_rings,
        exit_when_unused: args.exit_when_unused,
    }
}

/// Exporters from the command line.
pub fn exporters(args: &ReaderArgs) -> anyhow::Result<Vec<Box<dyn Exporter>>> {
    let mut out: Vec<Box<dyn Exporter>> = Vec::new();
    if let Some(dir) = &args.jsonl.jsonl_dir {
        let j = &args.jsonl;
        let options = JsonlOptions {
            dir: dir.clone(),
            template: j.filename_template.clone(),
            rotate_bytes: j.rotate_bytes,
            rotate_after: Duration::from_secs(j.rotate_secs),
            compress: j.compress,
            retain_files: j.retain_files,
            retain_age: j.retain_age,
            retain_bytes: j.retain_bytes,
        };
        out.push(Box::new(JsonlExporter::new(options)?));
    }
    if let Some(style) = args.console {
        out.push(Box::new(ConsoleExporter::stdout(style)));
    }
    if let Some(options) = otlp_options(&args.otlp)? {
        out.push(Box::new(
            OtlpExporter::new(options).context("setting up the OTLP exporter")?,
        ));
    }
    Ok(out)
}

/// OTLP exporter options from the command line (`None` without
/// `--otlp-endpoint`); reads `--otlp-headers-file`.
pub fn otlp_options(args: &OtlpArgs) -> anyhow::Result<Option<OtlpOptions>> {
    let Some(endpoint) = &args.otlp_endpoint else {
        return Ok(None);
    };
    let mut options = OtlpOptions::new(endpoint, args.otlp_protocol);
    options.headers = args.otlp_headers.clone();
    if let Some(path) = &args.otlp_headers_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading --otlp-headers-file {}", path.display()))?;
        let headers = OtlpHeader::parse_file(&text)
            .map_err(|e| anyhow!("--otlp-headers-file {}: {e}", path.display()))?;
        options.headers.extend(headers);
    }
    options.batch_size = args.otlp_batch_size as usize;
    options.timeout = args.otlp_timeout.max(Duration::from_millis(1));
    options.queue = args.otlp_queue as usize;
    options.retry_max_elapsed = args.otlp_retry_max_elapsed;
    options.metrics_interval = args.otlp_metrics_interval;
    Ok(Some(options))
}

/// Prints the `--accounting` lines.
pub fn print_accounting(report: &DrainReport) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for ring in &report.rings {
        serde_json::to_writer(&mut out, ring)?;
        out.write_all(b"\n")?;
    }
    for exporter in &report.exporters {
        if let Some(otlp) = &exporter.otlp {
            #[derive(serde::Serialize)]
            struct Line<'a> {
                exporter: &'a str,
                #[serde(flatten)]
                status: &'a crate::views::OtlpStatus,
                last_error: &'a Option<String>,
            }
            let line = Line {
                exporter: exporter.name,
                status: otlp,
                last_error: &exporter.last_error,
            };
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}

fn run_reader(args: ReaderArgs) -> anyhow::Result<ExitCode> {
    let shutdown = Arc::new(AtomicBool::new(false));
    install_signal_handlers(&shutdown)?;
    // Checked before attaching, so a bad option fails fast.
    let ui = if args.ui.no_ui || args.once {
        None
    } else {
        Some(ui::ui_config(&args.ui, take_token_env())?)
    };
    let exporters = exporters(&args)?;
    let mut reader = Reader::new(drain_options(&args), exporters, shutdown)?;
    if let Some((config, listen)) = ui {
        let warning = web::exposure_warning(listen.addr, config.token.is_some());
        let token = config.token.clone();
        let url = reader.serve(config, listen)?;
        if let Some(warning) = warning {
            eprintln!("profilis-reader: {warning}");
        }
        match (token, args.ui.ui_login_link) {
            (Some(token), true) => {
                eprintln!("profilis-reader: dashboard at {url}");
                // Asked for: the one place the token is printed.
                let link = web::auth::login_link(&url, &token);
                eprintln!("profilis-reader: login link (holds the token): {link}");
            }
            (Some(_), false) => eprintln!(
                "profilis-reader: dashboard at {url} (sign in with the token there, or open \
                 it with ?token=TOKEN once; --ui-login-link prints that link)"
            ),
            (None, _) => eprintln!("profilis-reader: dashboard at {url}"),
        }
    }
    let report = reader.start()?.wait()?;
    if args.accounting {
        print_accounting(&report)?;
    }
    if args.once && report.export_lost > 0 {
        eprintln!(
            "profilis-reader: {} events could not be exported (see the errors above)",
            report.export_lost
        );
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}
