#!/usr/bin/env bash
# One command that shows Profilis working: builds the reader in release mode
# and runs `profilis-reader demo` (an instrumented sample workload, the
# reader, JSONL output). Extra arguments go to the demo, e.g.
#   bash scripts/demo.sh --rate 5000 --dir ./demo-out
# Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p profilis-reader
target_dir="${CARGO_TARGET_DIR:-target}"
exec "$target_dir/release/profilis-reader" demo "$@"
