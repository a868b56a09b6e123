#!/usr/bin/env bash
# The reader's CPU with many writer processes attached, with and without
# sampling their CPU and memory (docs/reader.md, "Process resources").
# WRITERS loadgen processes (default 200), a quarter of them per ring on 4
# rings, each writing EVENTS_PER_SEC requests a second (default 20), are
# drained by one release profilis-reader; its CPU time (user + system, from
# /proc/PID/stat) is measured over SECONDS (default 20) after a 3 s warm-up,
# once per setting of --process-interval, the settings interleaved ROUNDS
# times (default 2) so that the machine's other load hits each alike.
#
#   bash scripts/process-sampling-cost.sh [WRITERS] [SECONDS] [ROUNDS]
#
# Prints one line per run: the setting, the writers the reader sampled,
# and its CPU in % of one core.
set -euo pipefail
cd "$(dirname "$0")/.."
writers="${1:-200}"
secs="${2:-20}"
rounds="${3:-2}"
rate="${EVENTS_PER_SEC:-20}"
settings="${SETTINGS:-0 1s 250ms}"
target_dir="${CARGO_TARGET_DIR:-target}"
# The settings scripts/build-reader.sh and the test stages build with, so
# that nothing is compiled again after them.
export CARGO_PROFILE_RELEASE_DEBUG="${CARGO_PROFILE_RELEASE_DEBUG:-false}"
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
reader=$(bash scripts/build-reader.sh 2>/dev/null)
cargo build --release --locked -p profilis --example loadgen --quiet
loadgen="$target_dir/release/examples/loadgen"
hz=$(getconf CLK_TCK)

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Long enough for every run: rounds × settings × (seconds + warm-up).
n_settings=$(wc -w <<< "$settings")
events=$(( rate * (rounds * n_settings * (secs + 6) + 30) ))
for i in $(seq 0 $(( writers - 1 ))); do
  "$loadgen" --ring "$work/r$(( i % 4 )).ring" --threads 1 --events "$events" \
    --rate "$rate" --service "svc$(( i % 4 ))" > /dev/null &
  pids+=($!)
done
sleep 2

ticks() { awk '{ s = $0; sub(/.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' "/proc/$1/stat"; }

for round in $(seq 1 "$rounds"); do
  for setting in $settings; do
    "$reader" "$work"/r0.ring "$work"/r1.ring "$work"/r2.ring "$work"/r3.ring \
      --keep-rings --process-interval "$setting" --ui-addr 127.0.0.1:0 \
      > /dev/null 2> "$work/reader.err" &
    reader_pid=$!
    sleep 3
    t0=$(ticks "$reader_pid")
    sleep "$secs"
    t1=$(ticks "$reader_pid")
    url=$(grep -o 'http://[^ ]*' "$work/reader.err" | head -n 1)
    sampled=$(curl -s "${url}metrics.json" | python3 -c \
      'import json,sys; p=json.load(sys.stdin)["processes"]; print(sum(s["processes"] for s in p["services"]), "of", p["writers"])')
    kill -TERM "$reader_pid"
    wait "$reader_pid" || true
    awk -v s="$setting" -v a="$t0" -v b="$t1" -v hz="$hz" -v secs="$secs" -v n="$sampled" \
      'BEGIN { printf "round %d  --process-interval %-6s sampled %-12s reader CPU %.2f%% of a core\n", '"$round"', s, n, (b - a) / hz / secs * 100 }'
  done
done
