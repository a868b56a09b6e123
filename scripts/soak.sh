#!/usr/bin/env bash
# Soak run (RELIABILITY.md; not part of the test command): loadgen writes a
# steady SOAK_RATE events/s (default 100000) into a ring for DURATION
# seconds (default 600), while the release reader drains it with every
# exporter on (JSONL with 32M rotation, zstd compression, --retain-bytes
# 256M and --retain-files 50; console off) and serves the dashboard with a
# token under HTTP load from wrk (8 connections, each waiting 20 ms between
# requests: about 400 requests/s over the dashboard, metrics.json, /metrics
# and /health). The statistics window is SOAK_WINDOW_MINUTES (default 3)
# so that it is full early: from then on the reader's memory must stay
# flat. Every 10 s it samples the reader's RSS and /health (queue depth,
# counters); at the end it prints RSS at start, once the window was full,
# at the end and max, drops, the largest queue depth, wrk's figures, the
# reader's CPU time and the load average, then stops the reader with
# SIGTERM and prints its accounting.
#
#   bash scripts/soak.sh [DURATION_SECONDS]
#
# Installs wrk (Debian) when missing. The token lives in files only.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-600}"
rate="${SOAK_RATE:-100000}"
window="${SOAK_WINDOW_MINUTES:-3}"
case "$duration$rate$window" in
  *[!0-9]*) echo "usage: $0 [DURATION_SECONDS] (SOAK_RATE=events/s, SOAK_WINDOW_MINUTES=N)" >&2; exit 2 ;;
esac
target_dir="${CARGO_TARGET_DIR:-target}"
if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --locked -p profilis-reader --bin profilis-reader --quiet
cargo build --release --locked -p profilis --example loadgen --quiet
reader="$target_dir/release/profilis-reader"
loadgen="$target_dir/release/examples/loadgen"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

umask 077
od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > "$work/token"
printf 'Authorization: Bearer %s\n' "$(cat "$work/token")" > "$work/auth-header"
umask 022
cat > "$work/load.lua" <<'LUA'
local f = assert(io.open(os.getenv("SOAK_TOKEN_FILE")))
local token = f:read("*l")
f:close()
wrk.headers["Authorization"] = "Bearer " .. token
local paths = {"/_profilis/metrics.json", "/_profilis/metrics", "/_profilis/health", "/_profilis/"}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[n % #paths + 1])
end
delay = function()
  return 20
end
LUA

echo "soak: ${duration}s at ${rate} events/s; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
ring="$work/soak.ring"
"$reader" "$ring" --wait --accounting \
  --jsonl-dir "$work/jsonl" --rotate-bytes 32M --compress zstd \
  --retain-bytes 256M --retain-files 50 \
  --ui-addr 127.0.0.1:0 --ui-token-file "$work/token" \
  --window-minutes "$window" \
  > "$work/reader.out" 2> "$work/reader.err" &
reader_pid=$!
pids+=("$reader_pid")
url=""
for _ in $(seq 1 300); do
  url=$(grep -o 'http://[^ ]*' "$work/reader.err" | head -n 1 || true)
  [ -n "$url" ] && break
  kill -0 "$reader_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "the reader did not start:"; cat "$work/reader.err"; exit 1
fi
base="${url%%/_profilis/*}"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$reader_pid/status"; }
echo "reader pid $reader_pid, dashboard at $url, RSS before load: $(rss) kB"

"$loadgen" --ring "$ring" --threads 1 --rate "$rate" --events $((rate * duration)) \
  --capacity 65536 --service soak > "$work/loadgen.out" &
loadgen_pid=$!
pids+=("$loadgen_pid")
SOAK_TOKEN_FILE="$work/token" wrk -t1 -c8 -d"${duration}s" --latency -s "$work/load.lua" "$base" \
  > "$work/wrk.out" 2>&1 &
wrk_pid=$!
pids+=("$wrk_pid")

sample() { # prints one sample line from /health
  curl -sS -H "@$work/auth-header" "${url}health" | python3 -c '
import json, sys
h = json.load(sys.stdin)
r = h["rings"][0] if h["rings"] else {}
j = h["limits"]["jsonl_bytes"]
print(r.get("queue_depth", 0), r.get("received", 0), r.get("dropped", 0),
      r.get("abandoned", 0), r.get("torn", 0), j["used"], h["status"])'
}
printf '%6s %9s %8s %11s %8s %9s %6s %12s %s\n' t_s rss_kB lag received dropped abandoned torn jsonl_bytes health
start=$(date +%s)
samples="$work/samples"
while kill -0 "$loadgen_pid" 2>/dev/null || kill -0 "$wrk_pid" 2>/dev/null; do
  sleep 10
  t=$(( $(date +%s) - start ))
  read -r lag received dropped abandoned torn jsonl status < <(sample)
  line=$(printf '%6s %9s %8s %11s %8s %9s %6s %12s %s' \
    "$t" "$(rss)" "$lag" "$received" "$dropped" "$abandoned" "$torn" "$jsonl" "$status")
  echo "$line" | tee -a "$samples"
  if [ "$t" -gt $((duration + 120)) ]; then
    echo "the load did not finish in time"; break
  fi
done
wait "$loadgen_pid" || true
wait "$wrk_pid" || true
# Let the reader catch up, then take the last sample.
sleep 2
read -r lag received dropped abandoned torn jsonl status < <(sample)
cpu_ticks=$(awk '{print $14 + $15}' "/proc/$reader_pid/stat")
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
kill -TERM "$reader_pid"
wait "$reader_pid" || { echo "the reader did not exit cleanly:"; cat "$work/reader.err"; exit 1; }

echo
echo "== soak summary (${duration}s at ${rate} events/s)"
# The statistics window grows by one histogram per name each minute until
# it spans --window-minutes; memory is flat from then on.
awk -v full=$(( (window + 1) * 60 )) \
  'NR == 1 {first = $2} $1 >= full && !filled {filled = $2; at = $1}
  {last = $2; if ($2 > max) max = $2; if ($3 > maxlag) maxlag = $3}
  END {printf "reader RSS: %d kB after 10 s, %d kB once the %d-minute window was full (%d s), %d kB at the end, max %d kB; largest queue depth %d\n",
       first, filled, full / 60 - 1, at, last, max, maxlag}' "$samples"
echo "final: received $received, dropped $dropped, abandoned $abandoned, torn $torn, lag $lag, health $status"
echo "JSONL on disk: $jsonl bytes (limit 268435456); files: $(ls "$work/jsonl" | wc -l)"
echo "reader CPU: $(awk -v t="$cpu_ticks" -v hz="$(getconf CLK_TCK)" -v d="$duration" \
  'BEGIN {printf "%.1f s (%.1f%% of one core over the run)", t / hz, t / hz / d * 100}')"
echo "loadgen: $(tail -n 1 "$work/loadgen.out")"
echo "wrk: $(grep -E 'Requests/sec' "$work/wrk.out" | tr -s ' '); \
$(grep -E '^ +Latency ' "$work/wrk.out" | head -n 1 | tr -s ' '); \
p99 $(grep -E '^ +99%' "$work/wrk.out" | tr -s ' '); \
$(grep -E 'requests in' "$work/wrk.out" | tr -s ' '); \
non-2xx: $(grep -E 'Non-2xx' "$work/wrk.out" | tr -s ' ' || echo none)"
echo "reader accounting: $(grep '^{"ring"' "$work/reader.out")"
echo "load average at the end: $load_end"
if grep -qFf "$work/token" "$work/reader.err" "$work/reader.out"; then
  echo "the token appears in the reader's output"; exit 1
fi
