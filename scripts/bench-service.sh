#!/usr/bin/env bash
# What Profilis costs a service, against what users run instead: the same
# axum service bare, with Profilis (ProfilisLayer + db::timed + a
# profilis-reader process with statistics, JSONL and the dashboard on), with
# tracing + tracing-opentelemetry + the OTLP exporter into a local receiver,
# with tracing-subscriber JSON through tracing-appender, and with metrics +
# metrics-exporter-prometheus; each a server process of its own, driven over
# 127.0.0.1 in interleaved rounds. Prints the markdown report
# (docs/benchmarks-service.md, "What Profilis costs a service").
#
#   bash scripts/bench-service.sh                 # full run (5 rounds, ~10 min)
#   bash scripts/bench-service.sh --smoke         # a few seconds each; checks shape
#   bash scripts/bench-service.sh --rounds 3 --json out.json --configs bare,profilis
#
# Every option is passed to the bench-service binary (`--help` lists them).
# The benchmark crate, benches/service, is a workspace of its own (the
# peers' dependencies stay out of the main workspace); it builds into
# target/bench-service, with the `smoke` profile (quicker to compile) for
# --smoke and `release` otherwise. The reader is the release build of
# scripts/build-reader.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target_dir="${CARGO_TARGET_DIR:-$root/target}"
profile=release
for arg in "$@"; do
  if [ "$arg" = "--smoke" ]; then profile=smoke; fi
done
reader=$(bash scripts/build-reader.sh)
(
  cd benches/service
  CARGO_TARGET_DIR="$target_dir/bench-service" \
    cargo build --locked --profile "$profile" --bins >&2
)
exec "$target_dir/bench-service/$profile/bench-service" --reader "$reader" "$@"
