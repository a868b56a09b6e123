//! Command line: `profilis-reader [OPTIONS] <RING>...`, `profilis-reader
//! demo`, and the hidden `workload` subcommand the demo runs.

use crate::outputs::console::ConsoleStyle;
use crate::outputs::jsonl::{Compression, DEFAULT_TEMPLATE};
use crate::outputs::otlp::{OtlpHeader, OtlpProtocol};
use crate::outputs::web::Theme;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;
pub use values::{parse_duration, parse_listen_addr, parse_size, ListenAddr};

mod values;

/// Drains Profilis ring files: rolling statistics, JSONL and console output,
/// dashboard and HTTP API.
#[derive(Parser, Debug)]
#[command(
    name = "profilis-reader",
    version = version(),
    about = "Drains Profilis ring files: rolling statistics, JSONL, console and OTLP output, live dashboard",
    long_about = "Drains one or more Profilis ring files (written by applications that use the \
profilis library) in batches, keeps rolling latency statistics, and writes the events as JSONL \
files, to the console and/or as OpenTelemetry spans and metrics (OTLP). A live dashboard, \
metrics.json, health and Prometheus endpoints are served on http://127.0.0.1:9470/_profilis/ (see the Dashboard options).\n\n\
Examples:\n  \
profilis-reader /dev/shm/profilis-1000.ring --jsonl-dir ./events\n  \
profilis-reader --watch /dev/shm --console pretty\n  \
profilis-reader --watch /dev/shm --otlp-endpoint http://127.0.0.1:4317\n  \
profilis-reader app.ring --once --accounting --jsonl-dir ./events\n  \
profilis-reader demo",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// What to do (default: drain the rings given).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Reader options.
    #[command(flatten)]
    pub reader: ReaderArgs,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a sample instrumented workload and the reader together, writing
    /// JSONL into a temporary (or given) directory. Stop with Ctrl-C.
    Demo(DemoArgs),
    /// List the ring files nobody needs any more: their writers exited,
    /// everything in them drained, and no process (writer or reader) has
    /// them open. Only lists them; --remove removes them.
    Gc(GcArgs),
    /// The demo's built-in workload: emits REQ/FN/DB/CUSTOM events into a
    /// ring until killed.
    #[command(hide = true)]
    Workload(WorkloadArgs),
}

/// Options of the reader.
#[derive(Args, Debug, Clone)]
pub struct ReaderArgs {
    /// Ring files to drain (all in one loop).
    #[arg(value_name = "RING", required_unless_present = "watch")]
    pub rings: Vec<PathBuf>,

    /// Attach every `*.ring` file in DIR as it appears; detach rings whose
    /// writers have all exited once they are drained.
    #[arg(long, value_name = "DIR")]
    pub watch: Option<PathBuf>,

    /// Keep the files of rings whose writers have all exited. By default
    /// such a ring file is removed once it is drained, every event
    /// exported and the post-mortems of its writers taken, unless another
    /// process still has it open. Never removed with --once.
    #[arg(long)]
    pub keep_rings: bool,

    /// Exit once no other process has had any of the rings open or mapped
    /// for DURATION (their writers are gone), after draining them and
    /// flushing every exporter, as on Ctrl-C; a named ring whose file is
    /// not there counts as unused. For a reader started by its application
    /// as a sidecar (the Python `AsyncCollector` starts it so), which then
    /// ends with the application. Looked at twice a second; not with
    /// --once.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub exit_when_unused: Option<Duration>,

    /// Wait for ring files (and the --watch directory) that do not exist yet
    /// instead of failing.
    #[arg(long)]
    pub wait: bool,

    /// Drain what is in the rings now, flush, and exit.
    #[arg(long)]
    pub once: bool,

    /// At exit, print one JSON line per ring with its counters (received,
    /// dropped, abandoned, torn, claimed, lag, messages_lost,
    /// messages_unread, names_unresolved, repairs, exported, export_lost).
    #[arg(long)]
    pub accounting: bool,

    /// Most events read from a ring per batch.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1_048_576), value_name = "N")]
    pub batch_max: u32,

    /// How often statistics snapshots are published and exporters do
    /// housekeeping (time-based rotation, retention).
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub flush_interval: Duration,

    /// How often the writers holding the rings' lanes are checked for a
    /// process that is gone. Its lanes are then taken back, and an event it
    /// died in the middle of is counted as abandoned. A dead writer holds up
    /// no other writer meanwhile. (`--stall-timeout` is the old name.)
    #[arg(
        long,
        alias = "stall-timeout",
        default_value = "50ms",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub liveness_interval: Duration,

    /// Most rings attached at once. Further ring files (from --watch or
    /// --wait) are refused with an error on stderr, counted in health's
    /// limits, and attached once another ring is detached.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=65_536), value_name = "N")]
    pub max_rings: u64,

    /// Statistics.
    #[command(flatten, next_help_heading = "Statistics")]
    pub stats: StatsArgs,

    /// Producers: post-mortems and worker views.
    #[command(flatten, next_help_heading = "Producers")]
    pub producers: ProducerArgs,

    /// JSONL output.
    #[command(flatten, next_help_heading = "JSONL exporter")]
    pub jsonl: JsonlArgs,

    /// Print events to stdout (coloured by kind on a terminal).
    #[arg(
        long,
        value_enum,
        value_name = "STYLE",
        help_heading = "Console exporter"
    )]
    pub console: Option<ConsoleStyle>,

    /// Dashboard and HTTP API.
    #[command(flatten, next_help_heading = "Dashboard and HTTP API")]
    pub ui: UiArgs,

    /// OTLP export.
    #[command(flatten, next_help_heading = "OTLP exporter")]
    pub otlp: OtlpArgs,
}

/// OTLP exporter options.
#[derive(Args, Debug, Clone)]
pub struct OtlpArgs {
    /// Send REQ/FN/DB events as spans and the statistics as metrics to an
    /// OTLP receiver such as an OpenTelemetry Collector: e.g.
    /// http://127.0.0.1:4317 (gRPC) or http://127.0.0.1:4318 (HTTP; the
    /// /v1/traces and /v1/metrics paths are appended).
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,

    /// Wire protocol: grpc (OTLP/gRPC) or http (OTLP/HTTP, binary protobuf).
    #[arg(
        long,
        value_enum,
        default_value = "grpc",
        value_name = "PROTOCOL",
        requires = "otlp_endpoint"
    )]
    pub otlp_protocol: OtlpProtocol,

    /// Extra header on every request, e.g. authorization=Bearer TOKEN
    /// (repeatable; values are never logged). Prefer --otlp-headers-file
    /// for secrets: the command line is visible to other users.
    #[arg(long = "otlp-header", value_name = "KEY=VALUE", value_parser = OtlpHeader::parse, requires = "otlp_endpoint")]
    pub otlp_headers: Vec<OtlpHeader>,

    /// Read headers from a file: one KEY=VALUE per line, # comments.
    #[arg(long, value_name = "PATH", requires = "otlp_endpoint")]
    pub otlp_headers_file: Option<PathBuf>,

    /// Most spans per export request. Keep requests below the receiver's
    /// message size limit (4 MiB by default for a collector's gRPC
    /// receiver; a span is roughly 150-400 bytes).
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..=16384), value_name = "N", requires = "otlp_endpoint")]
    pub otlp_batch_size: u32,

    /// Timeout of one export request, and of the final flush at shutdown.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION", requires = "otlp_endpoint")]
    pub otlp_timeout: Duration,

    /// Most spans waiting to be sent. When the receiver is slow or down
    /// and the queue is full, new spans are dropped and counted; the drain
    /// never waits for the network.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000), value_name = "SPANS", requires = "otlp_endpoint")]
    pub otlp_queue: u64,

    /// How long a failing request is retried (exponential backoff with
    /// jitter) before its spans count as failed; 0: no retries.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION", requires = "otlp_endpoint")]
    pub otlp_retry_max_elapsed: Duration,

    /// How often the statistics are sent as OTLP metrics (cumulative
    /// histograms and sums); 0: never.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION", requires = "otlp_endpoint")]
    pub otlp_metrics_interval: Duration,
}

/// Default address of the dashboard and HTTP API.
pub const DEFAULT_UI_ADDR: &str = "127.0.0.1:9470";

/// Dashboard and HTTP API options. The bearer token is read from
/// `--ui-token-file` or the `PROFILIS_UI_TOKEN` environment variable, never
/// from the command line (where any user could see it in the process list).
#[derive(Args, Debug, Clone)]
pub struct UiArgs {
    /// Do not serve the dashboard and HTTP API (never served with --once).
    #[arg(long)]
    pub no_ui: bool,

    /// Address to listen on: IP:PORT or HOST:PORT (a host name listens on
    /// its first IPv4 address, else its first address); port 0 picks a
    /// free port. Listening beyond loopback without a token prints a
    /// warning.
    #[arg(long, env = "PROFILIS_UI_ADDR", default_value = DEFAULT_UI_ADDR, value_name = "ADDR", value_parser = parse_listen_addr)]
    pub ui_addr: ListenAddr,

    /// Path prefix of every endpoint (`/` for none).
    #[arg(long, default_value = "/_profilis", value_name = "PREFIX")]
    pub ui_prefix: String,

    /// How often the dashboard fetches metrics.json, in milliseconds.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(100..=3_600_000), value_name = "MS")]
    pub ui_refresh_ms: u64,

    /// Title of the dashboard page.
    #[arg(long, default_value = "Profilis", value_name = "TEXT")]
    pub ui_title: String,

    /// Colour theme of the dashboard (a button on the page switches it).
    #[arg(long, value_enum, default_value = "dark", value_name = "THEME")]
    pub ui_theme: Theme,

    /// Extra stylesheet served after the built-in one (read at start).
    #[arg(long, value_name = "FILE")]
    pub ui_css: Option<PathBuf>,

    /// Allow cross-origin requests from ORIGIN (e.g.
    /// `https://grafana.example.com`); repeatable. None by default.
    #[arg(long = "ui-cors-origin", value_name = "ORIGIN")]
    pub ui_cors_origins: Vec<String>,

    /// File holding the bearer token required on every endpoint (first
    /// line, surrounding whitespace ignored). PROFILIS_UI_TOKEN is the
    /// alternative; without either, no authentication.
    #[arg(long, value_name = "FILE")]
    pub ui_token_file: Option<PathBuf>,

    /// How long a browser session opened with the token lasts (logging
    /// out ends it at once).
    #[arg(long, default_value = "12h", value_parser = parse_duration, value_name = "DURATION")]
    pub ui_session_lifetime: Duration,

    /// Print a login link with the token in it (`...?token=...`) next to
    /// the dashboard URL. Off by default: the token would then be in the
    /// terminal's or the log's history.
    #[arg(long)]
    pub ui_login_link: bool,

    /// Serve /health without the token (for load balancers and probes).
    #[arg(long)]
    pub ui_health_public: bool,

    /// Refuse plain HTTP: serve only HTTPS (needs --tls-cert and
    /// --tls-key), with Secure cookies and Strict-Transport-Security.
    #[arg(long)]
    pub ui_https_only: bool,

    /// TLS certificate chain (PEM); serves HTTPS instead of HTTP.
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

/// Statistics options.
#[derive(Args, Debug, Clone)]
pub struct StatsArgs {
    /// Length of the rolling window, in minutes (1-minute buckets).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=1440), value_name = "MINUTES")]
    pub window_minutes: u32,

    /// Latest errors kept (with route, status, exception type and message).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_errors: usize,

    /// Distinct routes, functions, queries and custom metrics tracked per
    /// kind; further names share one "(other)" entry.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000), value_name = "N")]
    pub max_routes: u64,

    /// Histogram resolution: durations closer than this many ns are not told
    /// apart (hdrhistogram's lowest discernible value); above it, 2
    /// significant digits (within 1%).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=60_000_000_000), value_name = "NS")]
    pub precision_ns: u64,
}

/// Per-producer options: post-mortems of dead writers and the merged
/// worker views.
#[derive(Args, Debug, Clone)]
pub struct ProducerArgs {
    /// Events kept per writer process and shown (and downloadable) once it
    /// is gone: its post-mortem. 0 turns post-mortems off.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=100_000), value_name = "N")]
    pub postmortem_events: u64,

    /// Worker processes per service with their own breakdown in the merged
    /// worker views; further workers share one "(other workers)" entry.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=4096), value_name = "N")]
    pub max_workers: u64,

    /// How often the CPU (user + system) and memory (RSS, PSS) of every
    /// live writer process are read from /proc: at most 256 processes per
    /// sample, the others in turn at the next ones. 0 turns it off (the
    /// reader still reports its own). At least 250ms.
    #[arg(long, default_value = "1s", value_parser = parse_process_interval, value_name = "DURATION")]
    pub process_interval: Duration,
}

/// `--process-interval`: 0 (off) or at least 250 ms.
fn parse_process_interval(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if !d.is_zero() && d < crate::ingest::processes::MIN_INTERVAL {
        return Err(format!(
            "{text} is too short: sample at most 4 times a second (250ms), or 0 for off"
        ));
    }
    Ok(d)
}

/// JSONL exporter options.
#[derive(Args, Debug, Clone)]
pub struct JsonlArgs {
    /// Write events as JSON lines into files in DIR (created if missing).
    #[arg(long, value_name = "DIR")]
    pub jsonl_dir: Option<PathBuf>,

    /// Rotate the JSONL file when it reaches this size (K, M, G suffixes;
    /// 0: never).
    #[arg(long, default_value = "100M", value_parser = parse_size, value_name = "BYTES")]
    pub rotate_bytes: u64,

    /// Rotate the JSONL file when it is this many seconds old (0: never).
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub rotate_secs: u64,

    /// File name of each JSONL file: {timestamp} (UTC), {pid}, {n} (the
    /// text is [`template_help`]).
    #[arg(long, default_value = DEFAULT_TEMPLATE, value_name = "TEMPLATE", help = template_help())]
    pub filename_template: String,

    /// Compress closed files (in the background).
    #[arg(long, value_enum, value_name = "KIND")]
    pub compress: Option<Compression>,

    /// Keep at most N closed files (oldest deleted first).
    #[arg(long, value_name = "N")]
    pub retain_files: Option<usize>,

    /// Delete closed files older than this (e.g. 7d, 12h).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub retain_age: Option<Duration>,

    /// Keep the JSONL files under this much disk (K, M, G suffixes):
    /// closed files are deleted oldest first so that they and a full
    /// current file fit. Needs --rotate-bytes at most this size.
    #[arg(long, value_parser = parse_size, value_name = "BYTES")]
    pub retain_bytes: Option<u64>,
}

/// Options of `demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Directory for the ring and the JSONL files (default: a new temporary
    /// directory, removed at exit unless --keep). A directory given here is
    /// never removed.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Keep the temporary directory (the ring and the JSONL files) at exit.
    #[arg(long)]
    pub keep: bool,

    /// Keep the demo's JSONL files under this much disk (K, M, G suffixes):
    /// the oldest files are deleted as new ones are written (the built-in
    /// workload writes a few MB a second). 0: no bound.
    #[arg(long, default_value = "64M", value_parser = parse_size, value_name = "BYTES")]
    pub retain_bytes: u64,

    /// Program to run as the workload instead of the built-in one; it gets
    /// the ring path in PROFILIS_RING.
    #[arg(long, value_name = "PATH")]
    pub workload: Option<PathBuf>,

    /// Requests per second of the built-in workload.
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub rate: u64,

    /// Stop after this long (default: run until Ctrl-C).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,

    /// Also print events to stdout.
    #[arg(long, value_enum, value_name = "STYLE")]
    pub console: Option<ConsoleStyle>,

    /// Address of the dashboard, IP:PORT or HOST:PORT (if the default
    /// port is taken, a free port is used instead).
    #[arg(long, env = "PROFILIS_UI_ADDR", default_value = DEFAULT_UI_ADDR, value_name = "ADDR", value_parser = parse_listen_addr)]
    pub ui_addr: ListenAddr,

    /// Do not start the dashboard.
    #[arg(long)]
    pub no_ui: bool,
}

/// Options of `gc`.
#[derive(Args, Debug, Clone)]
pub struct GcArgs {
    /// Ring files, or directories whose `*.ring` files to look at
    /// (default: the directory of the default ring: PROFILIS_DIR, else
    /// /dev/shm).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Remove the stale ring files (without it, nothing is removed).
    #[arg(long)]
    pub remove: bool,
}

/// Options of the built-in workload.
#[derive(Args, Debug, Clone)]
pub struct WorkloadArgs {
    /// Ring file (created if missing).
    #[arg(long, env = "PROFILIS_RING", value_name = "PATH")]
    pub ring: PathBuf,

    /// Requests per second, all threads together (0: as fast as possible).
    #[arg(long, default_value_t = 2000)]
    pub rate: u64,

    /// Worker threads.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: u32,

    /// Stop after this many requests (0: run until killed).
    #[arg(long, default_value_t = 0)]
    pub requests: u64,

    /// Service name recorded in the writer table.
    #[arg(long, default_value = "demo-shop")]
    pub service: String,
}

/// `--version`: the reader's version and the ring format it reads.
pub fn version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "{} (reads ring format {})",
            env!("CARGO_PKG_VERSION"),
            profilis::layout::VERSION
        )
    })
}

/// The help of `--filename-template`. Its placeholders are styled (bold on
/// a terminal): clap turns a plain `{n}` in help text into a line break,
/// and an escape sequence between `{` and `n` keeps it from matching.
pub fn template_help() -> clap::builder::StyledStr {
    use clap::builder::styling::Style;
    use std::fmt::Write;
    let bold = Style::new().bold();
    let mut help = clap::builder::StyledStr::new();
    let placeholder = |help: &mut clap::builder::StyledStr, name: &str| {
        // `{` and the name styled apart: the reset between them is the
        // escape sequence.
        let _ = write!(help, "{bold}{{{bold:#}{bold}{name}}}{bold:#}");
    };
    let _ = write!(help, "File name of each JSONL file: ");
    placeholder(&mut help, "timestamp");
    let _ = write!(help, " (UTC), ");
    placeholder(&mut help, "pid");
    let _ = write!(help, " (the reader's), ");
    placeholder(&mut help, "n");
    let _ = write!(help, " (files opened by this run, from 1)");
    help
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn version_names_the_ring_format() {
        let version = Cli::command().render_version();
        assert!(
            version.contains(&format!("ring format {}", profilis::layout::VERSION)),
            "{version}"
        );
    }

    #[test]
    fn help_keeps_every_template_placeholder() {
        let mut cmd = Cli::command();
        let help = cmd.render_long_help().to_string();
        let line = help
            .lines()
            .skip_while(|l| !l.contains("--filename-template"))
            .nth(1)
            .unwrap_or_default()
            .to_string();
        for placeholder in ["{timestamp}", "{pid}", "{n}"] {
            assert!(line.contains(placeholder), "{placeholder} in {line:?}");
        }
    }

    #[test]
    fn process_sampling_is_at_most_four_times_a_second_or_off() {
        let parse = |v: &str| {
            Cli::try_parse_from(["profilis-reader", "a.ring", "--process-interval", v])
                .map(|c| c.reader.producers.process_interval)
        };
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        let err = parse("100ms").unwrap_err().to_string();
        assert!(err.contains("at most 4 times a second"), "{err}");
        let cli = Cli::try_parse_from(["profilis-reader", "a.ring"]).unwrap();
        assert_eq!(
            cli.reader.producers.process_interval,
            Duration::from_secs(1)
        );
    }

    #[test]
    fn the_dashboard_address_may_be_a_host_name() {
        let cli = Cli::try_parse_from(["profilis-reader", "a.ring", "--ui-addr", "localhost:9470"])
            .unwrap();
        assert_eq!(cli.reader.ui.ui_addr.as_str(), "localhost:9470");
    }

    #[test]
    fn otlp_options_parse_and_need_an_endpoint() {
        let cli = Cli::try_parse_from([
            "profilis-reader",
            "a.ring",
            "--otlp-endpoint",
            "http://127.0.0.1:4318",
            "--otlp-protocol",
            "http",
            "--otlp-header",
            "authorization=Bearer x",
            "--otlp-header",
            "x-tenant=7",
        ])
        .unwrap();
        let o = &cli.reader.otlp;
        assert_eq!(o.otlp_protocol, OtlpProtocol::Http);
        assert_eq!(o.otlp_headers.len(), 2);
        assert_eq!(o.otlp_batch_size, 2048);
        assert_eq!(o.otlp_metrics_interval, Duration::from_secs(10));
        let debug = format!("{cli:?}");
        assert!(!debug.contains("Bearer x"), "header values never printed");
        assert!(
            Cli::try_parse_from(["profilis-reader", "a.ring", "--otlp-protocol", "http"]).is_err(),
            "OTLP options without an endpoint are a mistake"
        );
        assert!(Cli::try_parse_from([
            "profilis-reader",
            "a.ring",
            "--otlp-endpoint",
            "http://x:4317",
            "--otlp-header",
            "broken"
        ])
        .is_err());
    }

    #[test]
    fn ring_or_watch_is_required_and_demo_parses() {
        assert!(Cli::try_parse_from(["profilis-reader"]).is_err());
        let cli = Cli::try_parse_from(["profilis-reader", "--watch", "/dev/shm"]).unwrap();
        assert!(cli.reader.rings.is_empty());
        let cli = Cli::try_parse_from(["profilis-reader", "demo", "--rate", "10"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Demo(ref d)) if d.rate == 10));
        let cli = Cli::try_parse_from(["profilis-reader", "a.ring", "b.ring", "--once"]).unwrap();
        assert_eq!(cli.reader.rings.len(), 2);
        assert!(cli.reader.once);
    }

    #[test]
    fn ui_options_and_no_token_on_the_command_line() {
        let cli = Cli::try_parse_from(["profilis-reader", "a.ring"]).unwrap();
        let ui = &cli.reader.ui;
        assert!(!ui.no_ui);
        assert_eq!(ui.ui_prefix, "/_profilis");
        assert_eq!(ui.ui_refresh_ms, 2000);
        assert_eq!(ui.ui_theme, Theme::Dark);
        let cli = Cli::try_parse_from([
            "profilis-reader",
            "a.ring",
            "--ui-cors-origin",
            "https://a.example",
            "--ui-cors-origin",
            "https://b.example",
            "--ui-theme",
            "light",
        ])
        .unwrap();
        assert_eq!(cli.reader.ui.ui_cors_origins.len(), 2);
        assert_eq!(cli.reader.ui.ui_theme, Theme::Light);
        assert!(
            Cli::try_parse_from(["profilis-reader", "a.ring", "--ui-token", "secret"]).is_err(),
            "the token is never taken on the command line"
        );
        assert!(
            Cli::try_parse_from(["profilis-reader", "a.ring", "--tls-cert", "c.pem"]).is_err(),
            "a certificate needs its key"
        );
    }
}
