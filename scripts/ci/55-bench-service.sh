#!/usr/bin/env bash
# The service benchmark's crate (benches/service, a workspace of its own):
# formatting, clippy with -D warnings, its unit tests, then
# `scripts/bench-service.sh --smoke`, which runs every configuration for a
# few seconds and fails unless each produced throughput, latencies and CPU
# figures and each instrumentation's output holds what it should (the
# reader's JSONL: requests, queries, errors with messages, trace ids; the
# OTLP receiver: server, query and error spans; the JSON log: request,
# query and error lines; the Prometheus scrape: counters and buckets).
# Checks shape, not speed. Builds with the `smoke` profile.
set -euo pipefail
cd "$(dirname "$0")/../.."
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
(
  cd benches/service
  export CARGO_TARGET_DIR="$target_dir/bench-service"
  cargo fmt --check
  cargo clippy --locked --profile smoke --all-targets -- -D warnings
  cargo test --locked --profile smoke --quiet
)
bash scripts/bench-service.sh --smoke
