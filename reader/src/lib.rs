//! `profilis-reader`: drains Profilis ring files, keeps rolling statistics
//! and exports the events.
//!
//! The binary is a thin shell over this library ([`app::run`]), so the
//! integration tests and the web UI use the same modules:
//! - [`cli`]: the command line (clap derive).
//! - [`drain`]: the drain loop that owns the ring consumers, feeds the
//!   statistics and exporters, and publishes [`snapshot::Snapshot`]s.
//! - [`stats`]: the rolling-window StatsStore.
//! - [`exporters`]: JSONL and console, behind one trait.
//! - [`loss`], [`postmortem`], [`services`]: per-producer losses (LOSS
//!   markers), post-mortems of dead writers, merged worker views.
//! - [`web`]: the dashboard and HTTP API (axum), and [`prometheus`], the
//!   text exposition it serves.
//! - [`demo`] and [`workload`]: `profilis-reader demo`.

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod app;
pub mod ingest;
pub mod outputs;
pub mod support;
pub mod views;
pub mod window;
