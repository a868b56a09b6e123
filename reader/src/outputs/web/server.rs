//! Serving the router: a tokio runtime on threads of its own (never the
//! drain loop's, and at a lower priority: see [`crate::support::priority`]),
//! plain HTTP or HTTPS (rustls), stopped gracefully.

use super::{router, Listen, UiConfig, WebState};
use crate::support::priority::lower_thread_priority;
use crate::views::SnapshotHandle;
use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use axum_server::Handle;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::thread::JoinHandle;
use std::time::Duration;

/// Worker threads of the server's runtime: rendering is cached per
/// snapshot, so two are plenty and leave the cores to the drain loop.
const WORKER_THREADS: usize = 2;

/// A running dashboard server.
pub struct UiServer {
    addr: SocketAddr,
    url: String,
    handle: Option<Handle>,
    thread: Option<JoinHandle<()>>,
}

impl UiServer {
    /// The address it listens on (with the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The dashboard's URL (loopback when listening on all addresses).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops accepting, lets running requests finish (up to 1 s), and
    /// waits for the server threads.
    pub fn shutdown(mut self) {
        self.stop();
    }

    /// Leaves the server running until the process exits.
    pub fn detach(mut self) {
        self.handle = None;
        self.thread = None;
    }

    fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.graceful_shutdown(Some(Duration::from_secs(1)));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for UiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What to try when the address cannot be bound, for the causes that
/// have a likely remedy.
fn hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        ErrorKind::AddrInUse => {
            " (is another profilis-reader running? pass --ui-addr IP:PORT, or --no-ui)"
        }
        ErrorKind::AddrNotAvailable => {
            " (not an address of this host: pass --ui-addr with one of its addresses, \
             127.0.0.1, or 0.0.0.0 for all)"
        }
        ErrorKind::PermissionDenied => " (ports below 1024 need privileges: pick another port)",
        _ => "",
    }
}

/// Binds `listen.addr` (errors, such as an address in use, are returned
/// here) and serves the dashboard over `snapshots` on its own threads.
pub fn start(
    config: UiConfig,
    listen: Listen,
    snapshots: SnapshotHandle,
) -> anyhow::Result<UiServer> {
    let listener = std::net::TcpListener::bind(listen.addr).map_err(|e| {
        let message = format!("listening on {} for the dashboard{}", listen.addr, hint(&e));
        anyhow::Error::new(e).context(message)
    })?;
    listener
        .set_nonblocking(true)
        .context("configuring the dashboard socket")?;
    let addr = listener
        .local_addr()
        .context("reading the dashboard address")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name("profilis-ui")
        .on_thread_start(lower_thread_priority)
        .enable_io()
        .enable_time()
        .build()
        .context("starting the dashboard runtime")?;
    let tls = match &listen.tls {
        Some((cert, key)) => {
            // Only the ring provider is compiled in; make it the default
            // (an error just means it already is).
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = runtime
                .block_on(RustlsConfig::from_pem_file(cert, key))
                .with_context(|| {
                    format!(
                        "loading the TLS certificate {} and key {}",
                        cert.display(),
                        key.display()
                    )
                })?;
            Some(config)
        }
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let shown = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    };
    let url = format!("{scheme}://{shown}{}/", config.prefix);
    let app = router(WebState::new(snapshots, config)).into_make_service();
    let handle = Handle::new();
    let server_handle = handle.clone();
    let thread = std::thread::Builder::new()
        .name("profilis-ui".into())
        .spawn(move || {
            lower_thread_priority();
            let served = runtime.block_on(async move {
                match tls {
                    Some(tls) => {
                        axum_server::from_tcp_rustls(listener, tls)
                            .handle(server_handle)
                            .serve(app)
                            .await
                    }
                    None => {
                        axum_server::from_tcp(listener)
                            .handle(server_handle)
                            .serve(app)
                            .await
                    }
                }
            });
            if let Err(e) = served {
                tracing::error!("the dashboard server stopped: {e}");
            }
            // Connections still open after the grace period are dropped
            // with the runtime, without waiting for them.
            runtime.shutdown_timeout(Duration::from_millis(100));
        })
        .context("starting the dashboard thread")?;
    tracing::debug!(%addr, url, "dashboard listening");
    Ok(UiServer {
        addr,
        url,
        handle: Some(handle),
        thread: Some(thread),
    })
}
