#!/usr/bin/env bash
# The long kill storm (RELIABILITY.md): writer processes SIGKILLed at random
# points and the reader SIGKILLed and restarted, for DURATION seconds
# (default 300), then a final drain checks the identity and the JSONL files
# exactly. The same test runs for 12 s in `cargo test --workspace`.
#
#   bash scripts/kill-storm.sh [DURATION_SECONDS]
#
# PROFILIS_KILL_STORM_SEED=N repeats the kill schedule of an earlier run
# (each run prints its seed). Uses about 12,000 events/s and, gzip
# compressed, roughly 50 MB of temporary disk per 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-300}"
case "$secs" in
  ''|*[!0-9]*) echo "usage: $0 [DURATION_SECONDS]" >&2; exit 2 ;;
esac
PROFILIS_KILL_STORM_SECS="$secs" \
  cargo test --release --locked -p profilis-reader --test kill_storm
