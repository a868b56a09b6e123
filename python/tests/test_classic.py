"""The classic Profilis API from the installed package: the example app
(classic/classic_app.py: the classic snippet verbatim, a Flask app with
``ProfilisFlask(collector=...)`` and the dashboard blueprint) in a process
of its own, its reader sidecar draining the ring into JSONL and serving the
dashboard through the app."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from classic_support import Server, app_env, reader_pids, wait_for

TOKEN = "classic-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def server(tmp_path: Path, reader: Path):
    srv = Server.werkzeug(app_env(tmp_path, reader, CLASSIC_TOKEN=TOKEN))
    # The blueprint answers 503 until the sidecar is up.
    wait_for("the reader behind the blueprint", lambda: srv.get("/_profilis/health", AUTH)[0] == 200)
    yield srv
    srv.stop()


def test_the_classic_example_runs_and_its_reader_ends_with_it(server: Server) -> None:
    # The snippet's three events, redacted SQL, through the sidecar into the JSONL.
    events = wait_for("the snippet's events", lambda: len(server.events()) >= 4 and server.events())
    by_kind = {e["kind"]: e for e in events}
    assert by_kind["REQ"]["name"] == "/api/users" and by_kind["REQ"]["status"] == 200
    assert by_kind["FN"]["name"] == "expensive_calculation" and not by_kind["FN"]["error"]
    assert by_kind["DB"]["name"] == "SELECT * FROM users WHERE email = ?" and by_kind["DB"]["rows"] == 100
    assert by_kind["CUSTOM"]["name"] == "process_duration"
    pids = reader_pids(server.ring)
    assert len(pids) == 1, pids
    # The exporter's, collector's, StatsStore's and blueprint's settings.
    argv = " ".join(Path(f"/proc/{pids[0]}/cmdline").read_text().split("\0"))
    for option in (
        "--jsonl-dir " + str(server.logs),
        "--rotate-bytes 1048576 --rotate-secs 3600 --filename-template profilis-{timestamp}.jsonl",
        "--batch-max 128 --flush-interval 100ms",
        "--window-minutes 15 --max-errors 100 --max-routes 1000",
        "--ui-prefix /_profilis --ui-title My App --ui-theme light --ui-refresh-ms 500",
        "--ui-cors-origin https://x.example",
        "--exit-when-unused 2s",
    ):
        assert option in argv, (option, argv)
    assert TOKEN not in argv, "the token goes in the environment"

    for i in range(20):
        status, _, body = server.get(f"/api/users/{i}")
        assert status == (500 if i == 13 else 200), body
    reqs = wait_for(
        "20 requests in the JSONL",
        lambda: [e for e in server.events() if e["kind"] == "REQ" and e["name"] == "/api/users/<int:user_id>"]
        if len([e for e in server.events() if e.get("name") == "/api/users/<int:user_id>"]) == 20
        else None,
    )
    assert sum(e["error"] for e in reqs) == 1
    # Each request's DB event is in its trace.
    dbs = [e for e in server.events() if e["kind"] == "DB" and e["name"] == "SELECT name FROM users WHERE id = ?"]
    assert {e["trace_id"] for e in dbs} == {e["trace_id"] for e in reqs}

    # StatsStore reads the reader's statistics (published every flush
    # interval, so after the JSONL); the dashboard polls are not recorded.
    custom = wait_for(
        "the custom metric in the reader's statistics",
        lambda: (c := json.loads(server.get("/custom")[2])).get("process_duration") and c,
    )
    assert custom["process_duration"]["count"] == 1 and custom["process_duration"]["last"] == 1234.0
    metrics = wait_for(
        "the window to hold the requests",
        lambda: (m := json.loads(server.get("/_profilis/metrics.json", AUTH)[2]))["requests"]["total"] >= 22 and m,
    )
    assert metrics["routes"]["/api/users/<int:user_id>"]["count"] == 20
    assert not [r for r in metrics["routes"] if r.startswith("/_profilis")], metrics["routes"].keys()

    server.stop()
    # Nothing keeps running: the reader drains, flushes and exits by itself.
    wait_for("the reader to exit after the app", lambda: not reader_pids(server.ring), timeout=15)
    assert len([e for e in server.events() if e["kind"] == "REQ"]) == 22  # the snippet's, 20, /custom


def test_the_blueprint_serves_the_readers_dashboard_with_its_settings(server: Server) -> None:
    status, _, _ = server.get("/_profilis/metrics.json")
    assert status == 401, "the token is required"
    status, headers, page = server.get("/_profilis/", AUTH)
    assert status == 200 and b"My App" in page
    assert b'data-theme="light"' in page or b"light" in page
    assert b"dashboard-header" in page and b"metric-card" in page
    assert b"500" in page, "the refresh interval"
    status, _, _ = server.get("/_profilis")
    assert status in (301, 302, 307, 308), "the bare prefix redirects to the page"
    # CORS: the reader's answers, through the app.
    status, headers, _ = server.get("/_profilis/metrics.json", {**AUTH, "Origin": "https://x.example"})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "https://x.example"
    status, headers, _ = server.get("/_profilis/metrics.json", {**AUTH, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in headers
    # The classic /health shape (extra keys kept).
    health = wait_for(
        "the reader's first snapshot", lambda: (h := json.loads(server.get("/_profilis/health", AUTH)[2]))["rings"] and h
    )
    assert health["status"] == "healthy", health
    assert set(health["stats_store"]) == {"window_minutes", "total_requests", "total_errors", "error_rate"}
    assert health["stats_store"]["window_minutes"] == 15
    assert health["collector"]["queue_max"] == 2048 and health["collector"]["queue_size"] >= 0
    assert [r["policy"] for r in health["rings"]] == ["overwrite-oldest"], "drop_oldest=True"
    # Prometheus text.
    status, headers, body = server.get("/_profilis/metrics", AUTH)
    assert status == 200 and b"# TYPE" in body


def test_https_only_refuses_plain_http(tmp_path: Path, reader: Path) -> None:
    srv = Server.werkzeug(app_env(tmp_path, reader, CLASSIC_TOKEN=TOKEN, CLASSIC_HTTPS_ONLY="1"))
    try:
        wait_for("the reader", lambda: srv.get("/_profilis/health", {**AUTH, "X-Forwarded-Proto": "https"})[0] == 200)
        status, _, body = srv.get("/_profilis/health", AUTH)
        assert status == 403 and b"HTTPS" in body
        status, headers, _ = srv.get("/_profilis/health", {**AUTH, "X-Forwarded-Proto": "https"})
        assert status == 200 and "max-age" in headers["Strict-Transport-Security"]
    finally:
        srv.stop()


def test_bad_classic_settings_fail_with_clear_errors(tmp_path: Path) -> None:
    from profilis.exporters.console import ConsoleExporter
    from profilis.exporters.jsonl import JSONLExporter

    with pytest.raises(ValueError, match="needs {timestamp} or {n}"):
        JSONLExporter(dir=str(tmp_path), filename_template="events.jsonl")
    with pytest.raises(ValueError, match="placeholders"):
        JSONLExporter(dir=str(tmp_path), filename_template="p-{date}.jsonl")
    with pytest.raises(ValueError, match="rotate_bytes"):
        JSONLExporter(dir=str(tmp_path), rotate_bytes=-1)
    with pytest.raises(ValueError, match="style"):
        ConsoleExporter(style="loud")
    args = JSONLExporter(dir=str(tmp_path), rotate_bytes=10, rotate_secs=0).reader_args()
    assert args[args.index("--rotate-bytes") + 1] == "10" and args[args.index("--rotate-secs") + 1] == "0"


def test_a_short_script_gets_its_events_drained_and_printed_by_the_console_exporter(tmp_path: Path, reader: Path) -> None:
    # The script exits at once, before a reader would have settled: the
    # reader is started at exit, prints on the script's stdout (the pipe
    # stays open until the reader exits by itself) and leaves.
    script = (
        "from profilis.core.async_collector import AsyncCollector\n"
        "from profilis.core.emitter import Emitter\n"
        "from profilis.exporters.console import ConsoleExporter\n"
        "Emitter(AsyncCollector(ConsoleExporter(pretty=False))).emit_fn('console_check', dur_ns=1234)\n"
    )
    env = app_env(tmp_path, reader)
    ran = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    assert "console_check" in ran.stdout, ran.stdout
    assert not reader_pids(env["PROFILIS_RING"])
