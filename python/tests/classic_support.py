"""Helpers of the classic-API tests: the example app (classic/classic_app.py)
run as a server in its own process, HTTP requests to it, its JSONL, and the
reader processes of a ring."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

APP_DIR = Path(__file__).resolve().parent / "classic"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def request(port: int, method: str, path: str, headers: Optional[Dict[str, str]] = None) -> Tuple[int, Any, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def app_env(tmp: Path, reader: Path, **extra: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.update(
        PROFILIS_RING=str(tmp / "app.ring"),
        PROFILIS_READER=str(reader),
        CLASSIC_LOGS=str(tmp / "logs"),
        PROFILIS_SERVICE="classic-app",
    )
    env.update(extra)
    return env


class Server:
    """The example app in a process of its own (Werkzeug, or gunicorn)."""

    def __init__(self, command: List[str], env: Dict[str, str], port: int) -> None:
        self.port = port
        self.ring = env["PROFILIS_RING"]
        self.logs = Path(env["CLASSIC_LOGS"])
        self.proc = subprocess.Popen(command, cwd=APP_DIR, env=env, stdin=subprocess.DEVNULL)
        wait_for("the app to answer", self._up)

    @classmethod
    def werkzeug(cls, env: Dict[str, str]) -> "Server":
        port = free_port()
        return cls([sys.executable, "classic_app.py", str(port)], env, port)

    def _up(self) -> bool:
        assert self.proc.poll() is None, f"the app exited with {self.proc.returncode}"
        try:
            return request(self.port, "GET", "/health")[0] == 200
        except OSError:
            return False

    def get(self, path: str, headers: Optional[Dict[str, str]] = None) -> Tuple[int, Any, bytes]:
        return request(self.port, "GET", path, headers)

    def events(self) -> List[Dict[str, Any]]:
        out: List[Dict[str, Any]] = []
        for path in sorted(self.logs.glob("*.jsonl")):
            out += [json.loads(line) for line in path.read_text().splitlines() if line]
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


def reader_pids(ring: str) -> List[int]:
    """Running profilis-reader processes draining ``ring``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and argv and argv[0].endswith(b"profilis-reader") and ring.encode() in argv:
            pids.append(int(entry.name))
    return pids
