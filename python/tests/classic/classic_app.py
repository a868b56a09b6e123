"""The classic Profilis example, as its users wrote it: the snippet of the
classic API verbatim, then a Flask app with the adapter and the dashboard
blueprint. Run by the tests from the installed wheel:

    python classic_app.py PORT                # Werkzeug's threaded server
    gunicorn -w 4 -b 127.0.0.1:PORT classic_app:app

Settings from the environment (the ring comes from ``PROFILIS_RING``):
``CLASSIC_LOGS`` (JSONL directory), ``CLASSIC_TOKEN``,
``CLASSIC_HTTPS_ONLY`` (1: HTTPS only; the app trusts X-Forwarded-Proto as
behind a TLS-terminating proxy), ``CLASSIC_SAMPLE`` (default 1.0).
"""

import os

from flask import Flask, jsonify
from werkzeug.middleware.proxy_fix import ProxyFix

from profilis.exporters.jsonl import JSONLExporter
from profilis.exporters.console import ConsoleExporter  # noqa: F401 (the classic imports)
from profilis.core.async_collector import AsyncCollector
from profilis.core.emitter import Emitter
from profilis.core.stats import StatsStore
from profilis.runtime import use_span, span_id, get_trace_id, get_span_id
from profilis.flask.adapter import ProfilisFlask
from profilis.flask.ui import make_ui_blueprint

CSS = ".metric-card{border-left:7px solid rgb(255, 0, 170);} .dashboard-header{letter-spacing:3px;}"

exporter = JSONLExporter(dir=os.environ.get("CLASSIC_LOGS", "./logs"), rotate_bytes=1024 * 1024, rotate_secs=3600,
                         filename_template="profilis-{timestamp}.jsonl")
collector = AsyncCollector(exporter, queue_size=2048, batch_max=128,
                           flush_interval=0.1, drop_oldest=True)
emitter = Emitter(collector)
emitter.emit_req("/api/users", 200, dur_ns=15_000_000)
emitter.emit_fn("expensive_calculation", dur_ns=5_000_000, error=False)
emitter.emit_db("SELECT * FROM users WHERE email = 'ann@example.com'", dur_ns=8_000_000, rows=100)
with use_span(trace_id=span_id()):
    with use_span(span_id=span_id()):
        SNIPPET_TRACE = (get_trace_id(), get_span_id())
app = Flask(__name__)
app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1)
ProfilisFlask(app, collector=collector, exclude_routes=["/health", "/metrics"],
              sample=float(os.environ.get("CLASSIC_SAMPLE", "1.0")))
stats = StatsStore(window_minutes=15, max_errors=100, max_routes=1000)
stats.record_custom("process_duration", 1234.0)
app.register_blueprint(make_ui_blueprint(stats, ui_prefix="/_profilis",
    ui_auth_token=os.environ.get("CLASSIC_TOKEN") or None,
    ui_https_only=os.environ.get("CLASSIC_HTTPS_ONLY") == "1",
    ui_cors_origins=["https://x.example"],
    ui_title="My App", ui_theme="light", ui_custom_css=CSS,
    ui_refresh_interval=500))


@app.get("/api/users/<int:user_id>")
def user(user_id):
    emitter.emit_db(f"SELECT name FROM users WHERE id = {user_id}", dur_ns=50_000, rows=1)
    if user_id == 13:
        return jsonify(error="unlucky"), 500
    return jsonify(id=user_id, trace=get_trace_id())


@app.get("/health")
def health():
    return "ok"


@app.get("/custom")
def custom():
    return jsonify(stats.get_custom_metrics())


if __name__ == "__main__":
    import sys

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", int(sys.argv[1]), app, threaded=True)
    print("serving", flush=True)
    server.serve_forever()
