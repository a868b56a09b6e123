#!/usr/bin/env bash
# Benchmark smoke run: the compare binary in --quick mode must print every
# row and every target as valid JSON, and the criterion benches must run
# once each. Checks shape, not speed (speed targets are read from a full
# run of compare).
set -euo pipefail
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cargo run --release --locked -q -p profilis-benches --bin compare -- --quick --json >"$out"
python3 - "$out" <<'PY'
import json, sys
lines = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
rows = [r for r in lines if r.get("kind") == "row"]
targets = [t for t in lines if t.get("kind") == "target"]
keys = {"name", "group", "mode", "producers", "processes", "runs", "timing", "p50_ns", "p99_ns",
        "p999_ns", "p50_min_ns", "p50_max_ns", "p99_min_ns", "p99_max_ns", "events_per_sec",
        "drops", "ratio_to_floor", "ratio_to_rtrb", "ratio_to_profilis_1w"}
for r in rows:
    missing = keys - r.keys()
    assert not missing, f"row {r} lacks {missing}"
    assert r["events_per_sec"] > 0 and r["p50_ns"] > 0, f"empty measurement: {r}"
have = {(r["name"], r["mode"], r["producers"], r["processes"]) for r in rows}
want = {("timer_overhead", "-", 1, 1), ("profilis_drain", "-", 1, 1),
        ("tracing_json_nonblocking", "appender", 1, 1)}
for mode in ("backoff", "polling"):
    for name in ("floor", "rtrb", "naive_shm_spsc", "crossbeam_array_queue", "mutex_vecdeque",
                 "profilis_emit"):
        want.add((name, mode, 1, 1))
    for name in ("floor", "crossbeam_array_queue", "mutex_vecdeque", "profilis_emit"):
        want.add((name, mode, 2, 1))
    want.add(("profilis_emit", mode, 2, 2))
for n in (4, 8):
    want |= {("floor", "backoff", n, 1), ("profilis_emit", "backoff", n, 1)}
assert want <= have, f"missing rows: {sorted(want - have)}"
assert len(targets) == 13, f"expected 13 targets, got {len(targets)}"
for t in targets:
    assert t["value"] is not None, f"target not measured: {t}"
print(f"compare --quick: {len(rows)} rows and {len(targets)} targets, all present")
PY
cargo bench --locked -q -p profilis-benches --bench ring -- --test
cargo bench --locked -q -p profilis-benches --bench redact -- --test
# The reader's CPU per event by stage (reader/benches/reader_cpu.rs): a
# small ring, one round, built with the test profile that `cargo test`
# already compiled the reader with (a few seconds; figures in
# docs/benchmarks-service.md come from `cargo bench`).
cargo test --locked -q -p profilis-reader --bench reader_cpu -- --test --json >"$out"
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
stages = [r["stage"] for r in rows]
assert stages == ["drain", "statistics", "jsonl", "compression", "pipeline"], stages
for r in rows:
    assert r["pass_ns_per_event"] > 0 and r["events"] == 16384, f"empty measurement: {r}"
print(f"reader_cpu --test: {len(rows)} stages, all measured")
PY
