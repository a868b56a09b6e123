#!/usr/bin/env bash
# Benchmark of the dashboard under load (not part of the test command):
# loadgen writes ~1M events/s into a ring, profilis-reader drains it and
# serves the UI, and wrk hits metrics.json, then the dashboard page, with 50
# concurrent connections. Prints wrk's latency distribution for each, the
# reader's drain rate while serving, and its ring accounting at the end
# (dropped must stay 0: serving never holds up the drain loop).
#
#   bash scripts/bench-ui.sh                 # defaults below
#   RATE=500000 SECONDS_PER_RUN=5 bash scripts/bench-ui.sh
#
# Settings (environment): RATE (events/s, 1000000), SECONDS_PER_RUN (wrk
# duration per endpoint, 10), CONNECTIONS (50), WRK_THREADS (2),
# CAPACITY (ring slots, 1048576: about 1 s of events at 1M/s), WRK_NICE
# (0), JSONL=1 to also write JSONL (costs the
# drain loop much more CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${RATE:-1000000}
secs=${SECONDS_PER_RUN:-10}
connections=${CONNECTIONS:-50}
wrk_threads=${WRK_THREADS:-2}
capacity=${CAPACITY:-1048576}
# wrk's nice value: 0 (like the drain loop and unlike the server threads,
# which run at nice 10) makes the load generator outrank the server it
# measures, so the latencies are on the pessimistic side.
wrk_nice=${WRK_NICE:-0}
target_dir="${CARGO_TARGET_DIR:-target}"

if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --locked -p profilis-reader --bin profilis-reader --quiet
cargo build --release --locked -p profilis --example loadgen --quiet

base_dir=/dev/shm
[ -d "$base_dir" ] && [ -w "$base_dir" ] || base_dir=${TMPDIR:-/tmp}
work=$(mktemp -d "$base_dir/profilis-bench-ui.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ring="$work/bench.ring"
# Long enough for a quiet phase, both wrk runs and warm-up; then loadgen exits.
events=$(( rate * (3 * secs + 8) ))
"$target_dir/release/examples/loadgen" --ring "$ring" --threads 1 --capacity "$capacity" \
  --events "$events" --rate "$rate" > "$work/loadgen.out" &
loadgen_pid=$!
pids+=("$loadgen_pid")
extra=()
[ "${JSONL:-0}" = 1 ] && extra+=(--jsonl-dir "$work/jsonl")
"$target_dir/release/profilis-reader" "$ring" --wait --accounting --ui-addr 127.0.0.1:0 \
  --flush-interval 1s "${extra[@]}" > "$work/reader.out" 2> "$work/reader.err" &
reader_pid=$!
pids+=("$reader_pid")
url=""
for _ in $(seq 1 300); do
  url=$(grep -o 'http://[^ ]*' "$work/reader.err" | head -n 1 || true)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/reader.err"; exit 1; }
sleep 3 # warm-up: the drain reaches the full rate, snapshots have data

# The ring's drop counter and the reader's drain rate, from /health and
# metrics.json (one request each, outside the wrk runs).
dropped() {
  curl -s "${url}health" | python3 -c 'import json,sys; print(sum(r["dropped"] for r in json.load(sys.stdin)["rings"]))'
}
drain_rate() {
  curl -s "${url}metrics.json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.0f events/s drained, lag %d" % (d["reader"]["events_per_sec"], sum(r["lag"] for r in d["rings"])))'
}
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); loadgen $rate events/s; ring $capacity slots; nice -n $wrk_nice wrk -t$wrk_threads -c$connections -d${secs}s --latency"
before=$(dropped)
sleep "$secs"
after=$(dropped)
echo "=== no HTTP load for ${secs}s: dropped $((after - before)); reader: $(drain_rate)"
for path in metrics.json ""; do
  echo "=== GET ${url}${path}"
  before=$(dropped)
  nice -n "$wrk_nice" wrk -t"$wrk_threads" -c"$connections" -d"${secs}s" --latency "${url}${path}" \
    | grep -E "Latency|50%|90%|99%|Requests/sec|Non-2xx|Socket errors"
  after=$(dropped)
  echo "dropped during the run: $((after - before)); reader after: $(drain_rate)"
done
wait "$loadgen_pid" || true
echo "loadgen: $(tail -n 1 "$work/loadgen.out")"
# Let the reader drain what is left, then stop it and print its accounting.
for _ in $(seq 1 100); do
  lag=$(curl -s "${url}health" | python3 -c 'import json,sys; print(sum(r["queue_depth"] for r in json.load(sys.stdin)["rings"]))')
  [ "$lag" = 0 ] && break
  sleep 0.1
done
kill -TERM "$reader_pid"
wait "$reader_pid" || true
echo "reader accounting: $(grep '^{"ring"' "$work/reader.out")"
