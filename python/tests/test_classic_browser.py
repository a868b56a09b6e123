"""The dashboard mounted in the Flask app, in headless Chromium: after the
app served requests, the page (signed in with the token through the app)
shows them, with the title, theme and custom CSS given to
make_ui_blueprint (computed styles of `.metric-card` and
`.dashboard-header`). Needs Chromium and playwright-core:
PROFILIS_BROWSER_DIR names a directory with python/tests/browser/ and its
node_modules (scripts/ci/70-ffi-python.sh prepares it); outside CI the
test is skipped without it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from classic_support import Server, app_env, wait_for

TOKEN = "classic-browser-token-0123"
ROUTE = "/api/users/<int:user_id>"


def test_the_flask_mounted_dashboard_shows_the_apps_requests(tmp_path: Path, reader: Path) -> None:
    browser_dir = os.environ.get("PROFILIS_BROWSER_DIR")
    if not browser_dir:
        if os.environ.get("CI"):
            pytest.fail("PROFILIS_BROWSER_DIR is not set (scripts/ci/70-ffi-python.sh sets it)")
        pytest.skip("PROFILIS_BROWSER_DIR not set: no Chromium/playwright-core prepared")
    node = shutil.which("node")
    assert node, "node is needed"
    srv = Server.werkzeug(app_env(tmp_path, reader, CLASSIC_TOKEN=TOKEN))
    try:
        for i in range(12):
            assert srv.get(f"/api/users/{100 + i}")[0] == 200
        wait_for("the reader's state", lambda: srv.get("/_profilis/health", {"Authorization": f"Bearer {TOKEN}"})[0] == 200)
        out = subprocess.run(
            [node, "flask_dashboard.mjs", f"http://127.0.0.1:{srv.port}/_profilis/", TOKEN, ROUTE, "12"],
            cwd=browser_dir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        seen = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        srv.stop()
    assert seen["status"] == 200 and seen["url"].endswith("/_profilis/"), seen
    assert int(seen["shown"]["row"].replace(",", "")) == 12, seen
    assert seen["shown"]["total"] >= 13 and seen["shown"]["state"] == "live", seen
    style = seen["style"]
    assert style["cardBorderLeftColor"] == "rgb(255, 0, 170)" and style["cardBorderLeftWidth"] == "7px", style
    assert style["headerLetterSpacing"] == "3px", style
    assert style["title"].startswith("My App") and style["theme"] == "light", style
    assert not seen["problems"], seen["problems"]
