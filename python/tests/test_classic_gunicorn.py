"""The classic example under gunicorn with 4 pre-forked workers: every
worker builds the AsyncCollector, one reader drains the shared ring, the
dashboard (served by whichever worker gets the request) shows one service
merged over the workers, every request is counted once, and the reader
exits after gunicorn does."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from classic_support import Server, app_env, free_port, reader_pids, wait_for

REQUESTS = 200


def test_four_workers_one_reader_every_request_counted(tmp_path: Path, reader: Path) -> None:
    port = free_port()
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    env = app_env(tmp_path, reader, CLASSIC_TOKEN="")
    command = [gunicorn, "-w", "4", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5", "--log-level", "warning", "classic_app:app"]
    server = Server(command, env, port)
    try:
        # Each worker ran the snippet: 4 times its REQ event.
        wait_for("every worker's snippet", lambda: len([e for e in server.events() if e["kind"] == "REQ"]) == 4)
        for i in range(REQUESTS):
            status, _, _ = server.get(f"/api/users/{1000 + i}")
            assert status == 200
        route = "/api/users/<int:user_id>"
        reqs = wait_for(
            "every request in the JSONL",
            lambda: (r := [e for e in server.events() if e.get("name") == route]) and len(r) >= REQUESTS and r,
        )
        assert len(reqs) == REQUESTS, "each request exactly once"
        pids = reader_pids(server.ring)
        assert len(pids) == 1, f"one reader for the 4 workers: {pids}"

        def counted():
            m = json.loads(server.get("/_profilis/metrics.json")[2])
            return m if m["routes"].get(route, {}).get("count") == REQUESTS else None

        metrics = wait_for("the reader's count", counted)
        services = metrics["services"]
        assert [s["service"] for s in services] == ["classic-app"], services
        workers = {w["pid"] for w in services[0]["workers"]}
        assert workers == {e["pid"] for e in server.events()}, "the merged view covers every worker"
        assert len(workers) >= 2, f"requests spread over the workers: {workers}"
        merged = next(r for r in services[0]["routes"] if r["name"] == route)
        assert merged["count"] == REQUESTS and sum(w["count"] for w in merged["workers"]) == REQUESTS

        # Supervision: the starting worker killed, the reader goes on alone;
        # then the reader killed, a waiting worker takes the lock and starts
        # the one new reader, which drains from where the other stopped.
        state = json.loads(Path(server.ring + ".reader.json").read_text())
        assert state["reader_pid"] == pids[0]
        os.kill(state["supervisor_pid"], signal.SIGKILL)
        wait_for("gunicorn to replace the worker", lambda: server.get("/health")[0] == 200)
        assert reader_pids(server.ring) == pids, "the reader outlives its starter"
        os.kill(pids[0], signal.SIGKILL)
        new = wait_for("a new reader", lambda: (p := reader_pids(server.ring)) and p != pids and p)
        assert len(new) == 1, new
        for i in range(50):
            assert server.get(f"/api/users/{2000 + i}")[0] == 200
        wait_for(
            "the later requests in the JSONL",
            lambda: len({(e["pid"], e["seq"]) for e in server.events() if e.get("name") == route}) == REQUESTS + 50,
        )
        assert reader_pids(server.ring) == new
    finally:
        server.stop()
    wait_for("no reader left after gunicorn", lambda: not reader_pids(server.ring), timeout=15)
