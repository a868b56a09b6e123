#!/usr/bin/env bash
# The reader's CPU per event as a user runs it: the built-in workload
# (`profilis-reader workload`, about 4.8 events per request) writes into a
# ring in /dev/shm while a release `profilis-reader` drains it with the
# statistics, JSONL (rotated at 50 MB, 200 MB retention) and the dashboard
# on. Prints the reader's CPU seconds (utime + stime from /proc, all threads
# and per thread) over a fixed interval, the events it drained in that
# interval (from its metrics.json) and the CPU per 1,000 events.
#
#   bash scripts/bench-reader-cpu.sh                       # 21000 requests/s (~100k events/s), 10 s, zstd
#   bash scripts/bench-reader-cpu.sh --compress none       # without compression
#   bash scripts/bench-reader-cpu.sh --rate 2000 --seconds 30 --reader target/release/profilis-reader
#
# CPU seconds, not wall time: the figure holds on a busy machine as long as
# the reader keeps up (the events/s printed is close to the load's).
#
# The floor, measured in the same run: the kernel's CPU for writing as many
# bytes as the drain thread wrote in the interval (its `wchar`, the JSONL
# lines) into the same directory, by `dd` from /dev/zero in blocks the size
# of the reader's mean write: what the JSONL bytes cost to write, with no
# reading, statistics or rendering in it. With zstd the compression
# thread's figure is zstd's own cost (read the closed file, compress, write).
set -euo pipefail
rate=21000
seconds=10
compress=zstd
reader=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) rate=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --compress) compress=$2; shift 2 ;;
    --reader) reader=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$reader" ]; then
  cargo build --release --locked -q -p profilis-reader --bin profilis-reader
  reader="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/profilis-reader"
fi
work=$(mktemp -d /dev/shm/profilis-reader-cpu.XXXXXX)
port=$((20000 + RANDOM % 20000))
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$reader" workload --ring "$work/app.ring" --rate "$rate" --threads 2 >/dev/null &
pids+=($!)
sleep 0.5
extra=()
[ "$compress" != none ] && extra=(--compress "$compress")
"$reader" "$work/app.ring" --jsonl-dir "$work/jsonl" --rotate-bytes 50M --retain-bytes 200M \
  "${extra[@]}" --ui-addr "127.0.0.1:$port" 2>"$work/reader.err" &
reader_pid=$!
pids+=("$reader_pid")
sleep 3 # attached, first files open, page cache warm

threads() {
  for t in /proc/"$reader_pid"/task/*; do
    printf '%s %s\n' "$(tr ' ' '_' <"$t/comm")" "$(awk '{print $14 + $15}' "$t/stat")"
  done
}
drain_wchar() {
  for t in /proc/"$reader_pid"/task/*; do
    if [ "$(cat "$t/comm")" = profilis-drain ]; then
      awk '$1 == "wchar:" {print $2}' "$t/io"
      return
    fi
  done
  echo 0
}
drained() {
  curl -sf "http://127.0.0.1:$port/_profilis/metrics.json" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["reader"]; print(r["events"], r["batches"])'
}
threads >"$work/before"
read -r events0 batches0 < <(drained)
wchar0=$(drain_wchar)
t0=$(date +%s.%N)
sleep "$seconds"
threads >"$work/after"
read -r events1 batches1 < <(drained)
wchar1=$(drain_wchar)
t1=$(date +%s.%N)

# The floor: the same bytes written into the JSONL directory by dd.
written=$((wchar1 - wchar0))
block=$((written / (batches1 - batches0 > 0 ? batches1 - batches0 : 1) / 4096 * 4096))
[ "$block" -ge 4096 ] || block=4096
floor_cpu=0
if [ "$written" -gt 0 ]; then
  TIMEFORMAT='%U %S'
  floor_cpu=$({ time dd if=/dev/zero of="$work/jsonl/floor.dd" bs="$block" \
    count=$((written / block)) status=none 2>/dev/null; } 2>&1 | awk '{print $1 + $2}')
  rm -f "$work/jsonl/floor.dd"
fi

python3 - "$work/before" "$work/after" "$(getconf CLK_TCK)" "$events0" "$events1" \
  "$batches0" "$batches1" "$t0" "$t1" "$rate" "$compress" "$written" "$block" "$floor_cpu" <<'PY'
import sys
before_f, after_f, tck = sys.argv[1], sys.argv[2], float(sys.argv[3])
e0, e1, b0, b1 = (int(x) for x in sys.argv[4:8])
t0, t1, rate, compress = float(sys.argv[8]), float(sys.argv[9]), sys.argv[10], sys.argv[11]
written, block, floor_cpu = int(sys.argv[12]), int(sys.argv[13]), float(sys.argv[14])
def load(path):
    out = {}
    for line in open(path):
        name, ticks = line.split()
        out[name] = out.get(name, 0) + float(ticks)
    return out
before, after = load(before_f), load(after_f)
wall, events, batches = t1 - t0, e1 - e0, b1 - b0
cpu = {n: (after[n] - before.get(n, 0)) / tck for n in after}
total = sum(cpu.values())
print(f"reader CPU: workload {rate} requests/s, compress {compress}, {wall:.1f} s")
print(f"  events drained {events} ({events / wall:.0f}/s), {batches} batches ({events / max(batches, 1):.0f} events each)")
print(f"  CPU {total:.2f} s = {total / wall:.3f} of a core = {total / max(events, 1) * 1e6:.3f} ms per 1,000 events")
for name, s in sorted(cpu.items(), key=lambda kv: -kv[1]):
    if s > 0:
        print(f"    thread {name:<18} {s:6.2f} s  {s / max(events, 1) * 1e6:.3f} ms per 1,000 events")
if 0 < written < 50_000_000 or floor_cpu < 0.01:
    print(f"  floor: {written} bytes written, too few to time their write")
elif events > 0:
    floor = floor_cpu / events * 1e6
    ratio = f", the reader {total / floor_cpu:.1f}x that" if floor_cpu > 0 else ""
    print(f"  floor: the kernel writing the same {written / events:.0f} bytes per event with dd"
          f" ({block // 1024} KiB blocks) took {floor_cpu:.2f} s = {floor:.3f} ms per 1,000 events{ratio}")
PY
