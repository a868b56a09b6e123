"""The classic path (AsyncCollector, Emitter, ProfilisFlask(collector=...),
its reader sidecar) and the plain path (profilis.init(), profilis.emit_*,
ProfilisFlask(app), a reader run afterwards) record the same events: one
app, run each way in a process of its own, compared line by line without
what differs between runs (times, ids, pids, durations the app measured)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

from classic_support import APP_DIR, app_env, reader_pids, wait_for

RUN_SPECIFIC = {"ts", "ts_ns", "mono_ns", "seq", "trace_id", "span_id", "parent_span_id", "pid", "ring_id", "ring", "tid", "thread", "lane"}


def normalized(events: List[Dict[str, Any]]) -> List[str]:
    out = []
    for e in events:
        kept = {k: v for k, v in e.items() if k not in RUN_SPECIFIC}
        if e["kind"] == "REQ" and e["name"] != "/api/users":
            kept.pop("dur_ns", None)  # measured by the adapter
        out.append(json.dumps(kept, sort_keys=True))
    return out


def jsonl(directory: Path) -> List[Dict[str, Any]]:
    events = []
    for path in sorted(directory.glob("*.jsonl")):
        events += [json.loads(line) for line in path.read_text().splitlines() if line]
    return sorted(events, key=lambda e: e["seq"])


def test_collector_and_init_paths_record_the_same_events(tmp_path: Path, reader: Path) -> None:
    runs = {}
    for mode in ("collector", "init"):
        work = tmp_path / mode
        work.mkdir()
        env = app_env(work, reader, PROFILIS_DEBUG="1")
        ran = subprocess.run(
            [sys.executable, "equivalence_app.py", mode], cwd=APP_DIR, env=env, capture_output=True, text=True, timeout=60
        )
        assert ran.returncode == 0, ran.stderr
        if mode == "collector":
            # PROFILIS_DEBUG=1: the profilis logger at DEBUG, on stderr.
            assert "profilis DEBUG profilis: starting" in ran.stderr, ran.stderr
            wait_for("the sidecar to finish", lambda: not reader_pids(env["PROFILIS_RING"]), timeout=15)
        else:
            subprocess.run(
                [str(reader), env["PROFILIS_RING"], "--once", "--jsonl-dir", env["CLASSIC_LOGS"]],
                check=True,
                capture_output=True,
                timeout=60,
            )
        runs[mode] = jsonl(Path(env["CLASSIC_LOGS"]))
    kinds = [e["kind"] for e in runs["init"]]
    assert kinds.count("REQ") == 1 + 5 and kinds.count("DB") == 1 + 4, kinds
    assert normalized(runs["collector"]) == normalized(runs["init"])
