//! What Profilis costs a service, against what users run instead
//! (scripts/bench-service.sh; docs/benchmarks-service.md, "What Profilis costs a
//! service").
//!
//! - [`app`]: the service, in five configurations (the `service` binary);
//! - [`loadgen`]: the load generator, closed loop at saturation and
//!   coordinated-omission-aware at a fixed rate;
//! - [`procstat`]: CPU time of a process from `/proc/PID/stat`;
//! - [`receiver`]: the OTLP/HTTP receiver (the `otlp-receiver` binary);
//! - [`run`]: one configuration in one round (processes, phases, CPU,
//!   records); [`report`]: medians, ratios to bare, tables, targets and the
//!   smoke checks;
//! - the `bench-service` binary runs the configurations in interleaved
//!   rounds and prints the report.

pub mod app;
pub mod loadgen;
pub mod procstat;
pub mod receiver;
pub mod report;
pub mod run;
