#!/usr/bin/env bash
# Benchmark smoke run: the compare binary in --quick mode must print every
# row as valid JSON, and the criterion benches must run once each. Checks
# shape, not speed (speed targets are read from a full run of compare).
set -euo pipefail
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cargo run --release --locked -q -p profilis-benches --bin compare -- --quick --json >"$out"
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
keys = {"name", "threads", "p50_ns", "p99_ns", "p999_ns", "events_per_sec", "drops", "ratio_to_floor"}
for r in rows:
    missing = keys - r.keys()
    assert not missing, f"row {r} lacks {missing}"
    assert r["events_per_sec"] > 0 and r["p50_ns"] > 0, f"empty measurement: {r}"
have = {(r["name"], r["threads"]) for r in rows}
want = {("floor", 1), ("profilis_emit", 1), ("profilis_emit", 2), ("profilis_emit", 4),
        ("profilis_emit", 8), ("profilis_drain", 1), ("rtrb", 1), ("crossbeam_array_queue", 1),
        ("mutex_vecdeque", 1), ("tracing_json_nonblocking", 1)}
assert want <= have, f"missing rows: {sorted(want - have)}"
print(f"compare --quick: {len(rows)} rows, all present")
PY
cargo bench --locked -q -p profilis-benches --bench ring -- --test
