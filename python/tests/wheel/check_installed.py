"""Checks a `profilis` wheel installed into a fresh virtualenv, the way a
user gets it: run by that virtualenv's python, from outside the source tree
(scripts/ci/70-ffi-python.sh does this after `bash scripts/build-wheel.sh`).

    VENV/bin/python python/tests/wheel/check_installed.py

It checks that `profilis` imports from the virtualenv, not from the source
tree; that `profilis-reader` is on the virtualenv's PATH, next to `python`,
and names the ring format; and a user's first path: an app records events
(with the classic `profilis.runtime` trace snippet), the installed reader
drains the ring into JSONL, and every event is there with its trace.
Exits non-zero with the reason on the first failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def fail(reason: str) -> None:
    print(f"wheel check FAILED: {reason}", file=sys.stderr)
    sys.exit(1)


def main() -> None:
    venv_bin = Path(sys.executable).parent
    import profilis
    from profilis.runtime import get_trace_id, span_id, use_span

    package = Path(profilis.__file__).resolve()
    if Path(sys.prefix).resolve() not in package.parents:
        fail(f"profilis imported from {package}, not from the virtualenv {sys.prefix}")

    reader = shutil.which("profilis-reader", path=str(venv_bin))
    if reader is None:
        fail(f"profilis-reader is not in {venv_bin}")
    version = subprocess.run([reader, "--version"], capture_output=True, text=True, check=True)
    if "ring format" not in version.stdout:
        fail(f"--version does not name the ring format: {version.stdout!r}")

    with tempfile.TemporaryDirectory(prefix="profilis-wheel-") as tmp:
        ring = profilis.init(os.path.join(tmp, "app.ring"), capacity=4096, service="wheel-app")
        short = span_id()
        with use_span(trace_id=short):
            for i in range(100):
                profilis.emit_req("/items/<id>", 200 if i % 10 else 503, 1_000 + i, method="GET")
            trace = get_trace_id()
        out = os.path.join(tmp, "events")
        drained = subprocess.run(
            [reader, ring, "--once", "--accounting", "--jsonl-dir", out],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if drained.returncode != 0:
            fail(f"profilis-reader --once exited {drained.returncode}: {drained.stderr}")
        accounting = [json.loads(l) for l in drained.stdout.splitlines() if l.startswith("{")]
        if len(accounting) != 1 or accounting[0]["received"] != 100 or accounting[0]["dropped"] != 0:
            fail(f"accounting: {drained.stdout!r}")
        events = []
        for path in sorted(Path(out).glob("*.jsonl")):
            events += [json.loads(line) for line in path.read_text().splitlines() if line]
        if len(events) != 100:
            fail(f"{len(events)} events in the JSONL, 100 recorded")
        if {e["trace_id"] for e in events} != {trace} or trace != "0" * 16 + short:
            fail(f"trace ids {sorted({e.get('trace_id') for e in events})}, expected {trace}")
        if sum(e["error"] for e in events) != 10 or {e["service"] for e in events} != {"wheel-app"}:
            fail("errors or service names differ from what was recorded")
    print(f"wheel check: profilis from {package.parent}, {reader} ({version.stdout.strip()}), 100 events drained")


if __name__ == "__main__":
    main()
