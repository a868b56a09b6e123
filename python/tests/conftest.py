"""Shared fixtures: one ring per test session, drained by the real reader
(``profilis-reader RING --once --jsonl-dir DIR``) into JSONL, which the
tests read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

import profilis

REPO = Path(__file__).resolve().parents[2]

Event = Dict[str, Any]


def _reader_binary() -> Path:
    """`PROFILIS_READER`; else the `profilis-reader` installed with the
    wheel, next to this python; else one built from the source tree
    (`cargo build -p profilis-reader`, into `CARGO_TARGET_DIR` or
    `target/`)."""
    explicit = os.environ.get("PROFILIS_READER")
    if explicit:
        return Path(explicit)
    installed = Path(sys.executable).parent / "profilis-reader"
    if installed.exists():
        return installed
    print("building profilis-reader: cargo build -p profilis-reader", file=sys.stderr)
    subprocess.run(["cargo", "build", "-q", "-p", "profilis-reader"], cwd=REPO, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    return target / "debug" / "profilis-reader"


def pytest_report_header(config: pytest.Config) -> List[str]:
    return [
        f"profilis from {Path(profilis.__file__).parent}",
        f"profilis-reader: {_reader_binary()}",
    ]


@pytest.fixture(scope="session")
def ring(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ring") / "python-tests.ring"
    return profilis.init(str(path), capacity=4096, service="python-tests")


@pytest.fixture(scope="session")
def reader() -> Path:
    binary = _reader_binary()
    assert binary.exists(), f"{binary} not found"
    return binary


@pytest.fixture
def drain(ring: str, reader: Path) -> Callable[[], List[Event]]:
    """Returns a function that runs the reader once over the ring and
    returns the JSONL events written since the previous drain (the ring is
    emptied first)."""

    def run() -> List[Event]:
        with tempfile.TemporaryDirectory(prefix="profilis-jsonl-") as out:
            result = subprocess.run(
                [str(reader), ring, "--once", "--accounting", "--jsonl-dir", out],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 0, result.stderr
            accounting = [json.loads(l) for l in result.stdout.splitlines() if l.startswith("{")]
            assert len(accounting) == 1, result.stdout
            counts = accounting[0]
            assert counts["dropped"] == 0 and counts["lag"] == 0, counts
            assert counts["export_lost"] == 0 and counts["abandoned"] == 0, counts
            events = []
            for path in sorted(Path(out).glob("*.jsonl")):
                events += [json.loads(line) for line in path.read_text().splitlines() if line]
            # `received` counts over the ring's life; `exported` this run.
            assert len(events) == counts["exported"], (counts, len(events))
            events.sort(key=lambda e: e["seq"])
            return events

    run()
    return run
