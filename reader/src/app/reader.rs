//! A running reader: the drain loop on a thread of its own and, when asked,
//! the dashboard over the snapshots it publishes. `profilis-reader` and
//! `profilis-reader demo` both run one.

use super::drain::{Drain, DrainOptions, DrainReport};
use crate::outputs::web::server::{self, UiServer};
use crate::outputs::web::{Listen, UiConfig};
use crate::outputs::Exporter;
use crate::views::SnapshotHandle;
use anyhow::{anyhow, Context};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;

/// A reader ready to run: its rings attached, and the dashboard if asked.
pub struct Reader {
    drain: Drain,
    server: Option<UiServer>,
}

impl Reader {
    /// Attaches the rings; the drain loop will feed `exporters` until
    /// `shutdown` is set (or, with `--once`, until the rings are drained).
    pub fn new(
        options: DrainOptions,
        exporters: Vec<Box<dyn Exporter>>,
        shutdown: Arc<AtomicBool>,
    ) -> anyhow::Result<Reader> {
        Ok(Reader {
            drain: Drain::new(options, exporters, shutdown)?,
            server: None,
        })
    }

    /// Where the drain loop will publish its snapshots.
    pub fn snapshots(&self) -> SnapshotHandle {
        self.drain.snapshots()
    }

    /// Serves the dashboard until the reader stops (binding before anything
    /// is drained, so a taken address fails first); returns its URL.
    pub fn serve(&mut self, config: UiConfig, listen: Listen) -> anyhow::Result<String> {
        let server = server::start(config, listen, self.drain.snapshots())?;
        let url = server.url().to_string();
        self.server = Some(server);
        Ok(url)
    }

    /// Starts the drain loop on a thread of its own.
    pub fn start(self) -> anyhow::Result<Running> {
        let drain = self.drain;
        let thread = std::thread::Builder::new()
            .name("profilis-drain".into())
            .spawn(move || drain.run())
            .context("starting the drain thread")?;
        Ok(Running {
            thread,
            server: self.server,
        })
    }
}

/// The drain loop running, and the dashboard if started.
pub struct Running {
    thread: JoinHandle<DrainReport>,
    server: Option<UiServer>,
}

impl Running {
    /// Waits for the drain loop to stop, then stops the dashboard; returns
    /// the drain loop's report.
    pub fn wait(self) -> anyhow::Result<DrainReport> {
        let report = self
            .thread
            .join()
            .map_err(|_| anyhow!("the drain thread panicked"))?;
        if let Some(server) = self.server {
            server.shutdown();
        }
        Ok(report)
    }
}

/// Installs SIGINT/SIGTERM handlers that set `flag`: the drain loop then
/// does a final drain, flushes and exits. A second signal exits at once.
pub fn install_signal_handlers(flag: &Arc<AtomicBool>) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for (signal, code) in [(SIGINT, 130), (SIGTERM, 143)] {
        signal_hook::flag::register_conditional_shutdown(signal, code, flag.clone())
            .context("installing signal handler")?;
        signal_hook::flag::register(signal, flag.clone()).context("installing signal handler")?;
    }
    Ok(())
}
