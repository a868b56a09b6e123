//! `profilis-reader`: drains Profilis ring files, keeps rolling statistics
//! and exports the events.
//!
//! The binary is a thin shell over this library ([`app::run`]), so the
//! integration tests use the same modules. They stand in layers, each
//! importing only from itself and the layers below (ARCHITECTURE.md;
//! `tests/architecture.rs` checks it):
//! - [`app`]: the command line, the wiring and the drain loop, which runs
//!   ingest → window → outputs for every batch and publishes the snapshot.
//! - [`outputs`]: JSONL, console, OTLP (the exporters), Prometheus text and
//!   the web dashboard and API.
//! - [`window`]: the rolling-window engine and the statistics, worker views
//!   and histograms built on it.
//! - [`ingest`]: the rings: attaching, watching, reading batches and their
//!   losses, post-mortems of dead writers.
//! - [`views`]: the published snapshot, plain data.
//! - [`support`]: JSON, time formats, the log format and other helpers.

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod app;
pub mod ingest;
pub mod outputs;
pub mod support;
pub mod views;
pub mod window;
