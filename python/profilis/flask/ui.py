"""The Profilis dashboard inside a Flask app.

    stats = StatsStore(window_minutes=15)
    app.register_blueprint(make_ui_blueprint(stats, ui_prefix="/_profilis",
        ui_auth_token=token, ui_title="My App", ui_custom_css=".metric-card{...}"))

The dashboard, ``metrics.json``, ``health`` and ``metrics`` (Prometheus)
are the reader sidecar's (:mod:`profilis.core.sidecar`): it serves them on
a private port of 127.0.0.1 under the same prefix, with the title, theme,
custom stylesheet, refresh interval, CORS origins and token given here,
and the blueprint forwards every request below ``ui_prefix`` to it. So the
page, its login with the token, its JSON and its CORS answers are the
same as the standalone reader's, and they cover every worker process of
the app. HTTPS-only is the blueprint's own: a request that did not come
over HTTPS (``request.is_secure``; put ``werkzeug.middleware.proxy_fix``
in front behind a TLS-terminating proxy) gets 403, and answers get
``Strict-Transport-Security`` and Secure cookies. ``health`` also answers
in the classic shape (``status: healthy``, ``stats_store``, ``collector``).
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from typing import Any, Iterable, List, Optional

import profilis
from profilis.core.sidecar import sidecar
from profilis.core.stats import StatsStore
from profilis.flask.adapter import UI_BLUEPRINT

try:
    from flask import Blueprint, Response, request
except ImportError as exc:  # pragma: no cover - exercised without Flask only
    raise ImportError("profilis.flask.ui needs Flask: pip install flask") from exc

__all__ = ["make_ui_blueprint"]

_THEMES = ("dark", "light")
# Not forwarded either way (RFC 9110 hop-by-hop, and what the two ends set
# themselves).
_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


def make_ui_blueprint(
    stats: Optional[StatsStore] = None,
    ui_prefix: str = "/_profilis",
    ui_auth_token: Optional[str] = None,
    ui_https_only: bool = False,
    ui_cors_origins: Optional[Iterable[str]] = None,
    ui_title: str = "Profilis",
    ui_theme: str = "dark",
    ui_custom_css: Optional[str] = None,
    ui_refresh_interval: int = 2000,
) -> Blueprint:
    """A blueprint serving the dashboard at ``ui_prefix``.

    :param stats: the ``StatsStore`` whose settings the reader uses (its
        window is what ``health`` reports).
    :param ui_auth_token: required on every endpoint (``Authorization:
        Bearer``, the page's login, or ``?token=`` once); printable ASCII
        without spaces. None: no authentication.
    :param ui_https_only: refuse requests that did not come over HTTPS.
    :param ui_cors_origins: origins allowed to call the API from a browser.
    :param ui_title: page title and heading.
    :param ui_theme: ``dark`` or ``light``.
    :param ui_custom_css: stylesheet served after the built-in one; the
        header is ``.dashboard-header``, each summary card ``.metric-card``.
    :param ui_refresh_interval: milliseconds between the page's updates
        (100 to 3600000).

    Starts the reader sidecar on the process's ring when no
    ``AsyncCollector`` did (``profilis.init()`` with its defaults if no
    ring is open). Bad settings raise ``ValueError``/``TypeError``.
    """
    if stats is not None and not isinstance(stats, StatsStore):
        raise TypeError(f"make_ui_blueprint: stats must be a StatsStore, got {stats!r}")
    prefix = _prefix(ui_prefix)
    token = _token(ui_auth_token)
    origins = _origins(ui_cors_origins)
    if ui_theme not in _THEMES:
        raise ValueError(f"make_ui_blueprint: ui_theme must be 'dark' or 'light', got {ui_theme!r}")
    if not isinstance(ui_title, str) or not ui_title:
        raise ValueError(f"make_ui_blueprint: ui_title must be a non-empty str, got {ui_title!r}")
    if ui_custom_css is not None and not isinstance(ui_custom_css, str):
        raise TypeError("make_ui_blueprint: ui_custom_css must be a str (the stylesheet itself)")
    refresh = ui_refresh_interval
    if isinstance(refresh, bool) or not isinstance(refresh, int) or not 100 <= refresh <= 3_600_000:
        raise ValueError(f"make_ui_blueprint: ui_refresh_interval must be 100..3600000 ms, got {refresh!r}")
    https_only = bool(ui_https_only)

    args: List[str] = ["--ui-prefix", prefix, "--ui-title", ui_title, "--ui-theme", ui_theme]
    args += ["--ui-refresh-ms", str(refresh)]
    for origin in origins:
        args += ["--ui-cors-origin", origin]
    car = sidecar()
    car.configure("ui", args, token=token, css=ui_custom_css, prefix=prefix)
    if car.ring is None:
        car.start(profilis.ring_path() or profilis.init())

    bp = Blueprint(UI_BLUEPRINT, __name__, url_prefix=prefix)
    methods = ["GET", "HEAD", "POST", "OPTIONS"]

    def forward(sub: str = "") -> Response:
        if https_only and not request.is_secure:
            return Response("HTTPS required: this dashboard is served over HTTPS only\n", 403, mimetype="text/plain")
        resp = _proxy(prefix + "/" + sub)
        if sub == "health" and resp.status_code == 200:
            resp = _classic_health(resp, stats)
        if https_only:
            resp.headers["Strict-Transport-Security"] = "max-age=31536000"
            cookies = resp.headers.getlist("Set-Cookie")
            if cookies:
                del resp.headers["Set-Cookie"]
                for c in cookies:
                    resp.headers.add("Set-Cookie", c if "secure" in c.lower() else c + "; Secure")
        return resp

    def bare() -> Response:
        # The reader redirects the bare prefix to "prefix/" (the page's
        # relative links need the slash).
        return _proxy(prefix)

    bp.add_url_rule("", "bare", bare, methods=methods)
    bp.add_url_rule("/", "root", forward, methods=methods)
    bp.add_url_rule("/<path:sub>", "sub", forward, methods=methods)
    return bp


def _proxy(path: str) -> Response:
    state = sidecar().state()
    if state is None:
        return Response("the Profilis reader is not running (yet); try again in a moment\n", 503, mimetype="text/plain")
    target = urllib.parse.urlsplit(state["ui_url"])
    query = request.query_string.decode("latin-1")
    url = path + ("?" + query if query else "")
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
    body = request.get_data() if request.method == "POST" else None
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
    try:
        conn.request(request.method, url, body=body, headers=headers)
        upstream = conn.getresponse()
        data = upstream.read()
        out = Response(data, upstream.status)
        out.headers.clear()
        origin = f"{target.scheme}://{target.netloc}"
        for k, v in upstream.getheaders():
            if k.lower() in _HOP:
                continue
            if k.lower() == "location" and v.startswith(origin):
                v = v[len(origin) :]
            out.headers.add(k, v)
        if request.method != "HEAD":
            out.headers["Content-Length"] = str(len(data))
        return out
    except OSError as exc:
        return Response(f"the Profilis reader did not answer: {exc}\n", 502, mimetype="text/plain")
    finally:
        conn.close()


def _classic_health(resp: Response, stats: Optional[StatsStore]) -> Response:
    """Adds the classic keys: ``status`` ``healthy`` (for ``ok``),
    ``stats_store`` (the window's requests and errors) and ``collector``
    (events waiting in the ring(s) and their capacity)."""
    try:
        doc: Any = json.loads(resp.get_data())
    except ValueError:
        return resp
    window = doc.get("stats", {})
    rings = [r for r in doc.get("rings", []) if r.get("attached", True)]
    doc["reader_status"] = doc.get("status")
    if doc.get("status") == "ok":
        doc["status"] = "healthy"
    doc["stats_store"] = {
        # 0 until the reader's first snapshot: the configured length then.
        "window_minutes": window.get("window_minutes") or (stats.window_minutes if stats else None),
        "total_requests": window.get("total_requests", 0),
        "total_errors": window.get("total_errors", 0),
        "error_rate": window.get("error_rate", 0.0),
    }
    # Before the reader's first snapshot lists the ring: the collector's
    # capacity, as this process asked for it.
    doc["collector"] = {
        "queue_size": sum(int(r.get("queue_depth", 0)) for r in rings),
        "queue_max": sum(int(r.get("capacity", 0)) for r in rings) or sidecar().queue_max,
    }
    resp.set_data(json.dumps(doc))
    resp.headers["Content-Type"] = "application/json"
    return resp


def _prefix(prefix: Any) -> str:
    if not isinstance(prefix, str) or not prefix.startswith("/") or prefix == "/":
        raise ValueError(f"make_ui_blueprint: ui_prefix must be a path like '/_profilis', got {prefix!r}")
    if any(c in prefix for c in "?#% \t") or "//" in prefix:
        raise ValueError(f"make_ui_blueprint: ui_prefix {prefix!r} must be a plain path")
    return prefix.rstrip("/")


def _token(token: Any) -> Optional[str]:
    if token is None:
        return None
    if not isinstance(token, str) or not token:
        raise ValueError("make_ui_blueprint: ui_auth_token must be a non-empty str or None")
    if not all(33 <= ord(c) <= 126 for c in token):
        raise ValueError("make_ui_blueprint: ui_auth_token must be printable ASCII without spaces")
    return token


def _origins(origins: Any) -> List[str]:
    if origins is None:
        return []
    if isinstance(origins, str):
        raise TypeError("make_ui_blueprint: ui_cors_origins must be a list of origins, not a string")
    out = []
    for o in origins:
        parts = urllib.parse.urlsplit(str(o).rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ValueError(f"make_ui_blueprint: CORS origin {o!r}: expected one like https://x.example[:port]")
        out.append(f"{parts.scheme}://{parts.netloc}")
    return out
