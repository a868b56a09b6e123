//! The OTLP/HTTP receiver of the `otel` configuration. Prints
//! `listening on 127.0.0.1:PORT`; on SIGTERM prints its counts as one JSON
//! line and exits.

use anyhow::Context as _;
use profilis_bench_service::receiver::{self, Counters};
use std::io::Write as _;
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let port: u16 = match std::env::args().nth(1) {
        Some(p) => p.parse().context("the argument is a port")?,
        None => 0,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .context("binding 127.0.0.1")?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let counters = Arc::new(Counters::default());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    axum::serve(listener, receiver::router(counters.clone()))
        .with_graceful_shutdown(async move {
            term.recv().await;
        })
        .await?;
    println!("{}", serde_json::to_string(&counters.snapshot())?);
    Ok(())
}
