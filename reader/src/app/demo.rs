//! `profilis-reader demo`: one command that shows the whole system. It
//! creates a ring in a temporary (or given) directory, starts an
//! instrumented workload as a child process with `PROFILIS_RING` set, drains
//! the ring with JSONL output into `<dir>/jsonl`, prints a summary every few
//! seconds, and on Ctrl-C (or `--duration`) stops the workload, reaps it,
//! drains what is left and exits. The JSONL files are kept under
//! `--retain-bytes` (64 MiB by default), and a temporary directory is
//! removed at exit unless `--keep`.

use super::cli::{DemoArgs, DEFAULT_UI_ADDR};
use super::drain::DrainOptions;
use super::reader::{install_signal_handlers, Reader};
use crate::outputs::console::{human_duration, ConsoleExporter};
use crate::outputs::jsonl::{JsonlExporter, JsonlOptions, CURRENT_FILE};
use crate::outputs::web::{self, Listen, UiConfig};
use crate::outputs::Exporter;
use crate::views::SnapshotHandle;
use anyhow::Context;
use profilis::{Ring, RingOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Starts the dashboard over `snapshots` (unless `--no-ui`) for the rest of
/// the process and returns its URL. When the default port is taken (another
/// reader runs), a free port is used instead.
pub fn start_dashboard(
    snapshots: &SnapshotHandle,
    args: &DemoArgs,
) -> anyhow::Result<Option<String>> {
    if args.no_ui {
        return Ok(None);
    }
    let config = UiConfig {
        refresh_ms: 1000,
        ..UiConfig::default()
    };
    let listen = |addr| Listen { addr, tls: None };
    let addr = args.ui_addr.resolve()?;
    let server = match web::server::start(config.clone(), listen(addr), snapshots.clone()) {
        Ok(server) => server,
        Err(e) if args.ui_addr.as_str() == DEFAULT_UI_ADDR && address_in_use(&e) => {
            eprintln!("profilis-reader: {e:#}; using a free port instead");
            let mut any = addr;
            any.set_port(0);
            web::server::start(config, listen(any), snapshots.clone())?
        }
        Err(e) => return Err(e),
    };
    let url = server.url().to_string();
    server.detach();
    Ok(Some(url))
}

fn address_in_use(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::AddrInUse)
}

/// The demo's directory: the one given (never removed), or a new
/// temporary one, removed when this is dropped unless kept.
struct DemoDir {
    path: PathBuf,
    remove: bool,
}

impl DemoDir {
    fn new(given: Option<PathBuf>, keep: bool) -> anyhow::Result<DemoDir> {
        if let Some(dir) = given {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            return Ok(DemoDir {
                path: dir,
                remove: false,
            });
        }
        let base = std::env::temp_dir();
        for attempt in 0..100u32 {
            let dir = base.join(format!(
                "profilis-demo-{}-{}",
                std::process::id(),
                crate::support::timefmt::now_ns() / 1_000_000 + u64::from(attempt)
            ));
            let mut builder = std::fs::DirBuilder::new();
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            match builder.create(&dir) {
                Ok(()) => {
                    return Ok(DemoDir {
                        path: dir,
                        remove: !keep,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
            }
        }
        anyhow::bail!("could not create a directory under {}", base.display())
    }

    /// What becomes of the directory at exit, for the banner.
    fn at_exit(&self) -> &'static str {
        if self.remove {
            "the directory is removed (--keep keeps it)"
        } else {
            "the directory is kept"
        }
    }
}

impl Drop for DemoDir {
    fn drop(&mut self) {
        if !self.remove {
            eprintln!(
                "The ring and the JSONL files are in {}",
                self.path.display()
            );
            return;
        }
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => eprintln!("removed {}", self.path.display()),
            Err(e) => eprintln!(
                "profilis-reader: could not remove {}: {e}",
                self.path.display()
            ),
        }
    }
}

/// The demo's JSONL options: `--retain-bytes` bounds the files, which are
/// rotated at a quarter of it (at least 1 MiB) so that retention has
/// closed files to delete.
fn jsonl_options(dir: &Path, retain_bytes: u64) -> JsonlOptions {
    let mut options = JsonlOptions::new(dir);
    if retain_bytes > 0 {
        options.rotate_bytes = (retain_bytes / 4).max(1 << 20).min(retain_bytes);
        options.retain_bytes = Some(retain_bytes);
    }
    options
}

fn spawn_workload(args: &DemoArgs, ring: &Path) -> anyhow::Result<Child> {
    let mut cmd = match &args.workload {
        Some(program) => Command::new(program),
        None => {
            let exe = std::env::current_exe().context("locating the profilis-reader binary")?;
            let mut cmd = Command::new(exe);
            cmd.arg("workload")
                .arg("--ring")
                .arg(ring)
                .arg("--rate")
                .arg(args.rate.to_string());
            cmd
        }
    };
    cmd.env("PROFILIS_RING", ring)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls prctl, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            // The workload must not outlive the demo, even if the demo is
            // killed with SIGKILL.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd.spawn().with_context(|| match &args.workload {
        Some(p) => format!("starting workload {}", p.display()),
        None => "starting the built-in workload".to_string(),
    })
}

/// Stops the child: SIGTERM, then SIGKILL after 2 s; always reaps it.
fn stop_child(child: &mut Child) -> std::io::Result<std::process::ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    // SAFETY: kill has no memory-safety preconditions; the pid is our
    // unreaped child, so it cannot have been reused.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill()?;
    child.wait()
}

fn summary_line(snapshots: &SnapshotHandle) -> String {
    let s = snapshots.load();
    let r = &s.stats.requests;
    format!(
        "requests {} ({:.0}/s)  p50 {}  p95 {}  p99 {}  errors {:.1}%  events drained {}  dropped {}",
        r.count,
        r.rps,
        human_duration(r.p50_ns),
        human_duration(r.p95_ns),
        human_duration(r.p99_ns),
        r.error_rate * 100.0,
        s.reader.events,
        s.rings.iter().map(|r| r.counters.dropped).sum::<u64>(),
    )
}

/// `bytes` as `64 MiB`, `1.5 GiB`, `512 KiB` or `100 bytes`.
fn human_bytes(bytes: u64) -> String {
    let units = [("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (unit, shift) in units {
        if bytes >= 1 << shift {
            let value = bytes as f64 / (1u64 << shift) as f64;
            return if value.fract() == 0.0 {
                format!("{value:.0} {unit}")
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{bytes} bytes")
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = DemoDir::new(args.dir.clone(), args.keep)?;
    let ring_path = dir.path.join("demo.ring");
    let jsonl_dir = dir.path.join("jsonl");
    // Create the ring up front so the reader attaches before the workload
    // emits its first event.
    drop(
        Ring::create_or_open(&ring_path, RingOptions::default())
            .with_context(|| format!("creating ring {}", ring_path.display()))?,
    );
    let shutdown = Arc::new(AtomicBool::new(false));
    install_signal_handlers(&shutdown)?;
    let mut exporters: Vec<Box<dyn Exporter>> = vec![Box::new(JsonlExporter::new(jsonl_options(
        &jsonl_dir,
        args.retain_bytes,
    ))?)];
    if let Some(style) = args.console {
        exporters.push(Box::new(ConsoleExporter::stdout(style)));
    }
    let drain_stop = Arc::new(AtomicBool::new(false));
    let reader = Reader::new(
        DrainOptions {
            rings: vec![ring_path.clone()],
            flush_interval: Duration::from_millis(500),
            // The directory is the demo's to keep or remove, ring and all.
            keep_rings: true,
            ..DrainOptions::default()
        },
        exporters,
        drain_stop.clone(),
    )?;
    let snapshots = reader.snapshots();
    let running = reader.start()?;
    let mut child = spawn_workload(&args, &ring_path)?;
    let dashboard = start_dashboard(&snapshots, &args)?;
    eprintln!("Profilis demo");
    eprintln!("  ring:      {}", ring_path.display());
    match &args.workload {
        Some(p) => eprintln!("  workload:  {} (pid {})", p.display(), child.id()),
        None => eprintln!(
            "  workload:  built-in web shop, {} req/s (pid {})",
            args.rate,
            child.id()
        ),
    }
    match args.retain_bytes {
        0 => eprintln!("  JSONL:     {} (no size bound)", jsonl_dir.display()),
        bytes => eprintln!(
            "  JSONL:     {} (kept under {}: the oldest files are deleted; --retain-bytes)",
            jsonl_dir.display(),
            human_bytes(bytes)
        ),
    }
    eprintln!(
        "             follow it with: tail -F {}",
        jsonl_dir.join(CURRENT_FILE).display()
    );
    match &dashboard {
        Some(url) => eprintln!("  dashboard: {url}"),
        None => eprintln!("  dashboard: off (--no-ui)"),
    }
    eprintln!("  at exit:   {}", dir.at_exit());
    eprintln!("Press Ctrl-C to stop.");
    let started = Instant::now();
    let mut next_summary = started + Duration::from_secs(5);
    let mut workload_failed = None;
    loop {
        if shutdown.load(Relaxed) || args.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        if let Some(status) = child.try_wait().context("checking the workload")? {
            if !status.success() {
                workload_failed = Some(status);
            }
            eprintln!("workload exited ({status})");
            break;
        }
        if Instant::now() >= next_summary {
            next_summary += Duration::from_secs(5);
            eprintln!("{}", summary_line(&snapshots));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("stopping the workload...");
    stop_child(&mut child).context("stopping the workload")?;
    drain_stop.store(true, Relaxed);
    let report = running.wait()?;
    eprintln!("{}", summary_line(&snapshots));
    for ring in &report.rings {
        eprintln!(
            "ring {}: received {}, dropped {}, exported {}, export lost {}",
            ring.ring, ring.received, ring.dropped, ring.exported, ring.export_lost
        );
    }
    if let Some(status) = workload_failed {
        anyhow::bail!("the workload failed ({status})");
    }
    Ok(ExitCode::SUCCESS)
}
