"""One app, recorded two ways: ``python equivalence_app.py collector`` (the
classic API: AsyncCollector + Emitter + ProfilisFlask(collector=...), its
reader sidecar writing ``CLASSIC_LOGS``) or ``python equivalence_app.py
init`` (``profilis.init()``, ``profilis.emit_*``, ProfilisFlask(app); the
test drains the ring afterwards). The same events must come out."""

import os
import sys

from flask import Flask, abort

import profilis
from profilis.flask import ProfilisFlask

mode = sys.argv[1]
app = Flask(__name__)
if mode == "collector":
    from profilis.core.async_collector import AsyncCollector
    from profilis.core.emitter import Emitter
    from profilis.exporters.jsonl import JSONLExporter

    collector = AsyncCollector(JSONLExporter(dir=os.environ["CLASSIC_LOGS"]), queue_size=4096, drop_oldest=False)
    emit = Emitter(collector)
    ProfilisFlask(app, collector=collector, exclude_routes=["/skip"])
else:
    profilis.init(capacity=4096)
    emit = profilis
    ProfilisFlask(app, exclude_routes=["/skip"])


@app.get("/items/<int:item_id>")
def item(item_id):
    emit.emit_db(f"SELECT * FROM items WHERE id = {item_id} AND owner = 'ann'", 40_000, rows=1)
    if item_id == 7:
        abort(404)
    if item_id == 9:
        raise KeyError("nine")
    return {"id": item_id}


@app.get("/skip")
def skip():
    return "not recorded"


emit.emit_req("/api/users", 200, dur_ns=15_000_000, method="GET")
emit.emit_fn("expensive_calculation", dur_ns=5_000_000, error=False)
emit.emit_fn("charge", dur_ns=2_000_000, error=ValueError("card declined"))
emit.emit_db("SELECT * FROM users WHERE email = 'ann@example.com'", dur_ns=8_000_000, rows=100)
emit.emit_custom("queue_depth", 17.0)
client = app.test_client()
for i in (1, 7, 9, 3):
    client.get(f"/items/{i}")
client.get("/skip")
client.get("/nowhere")
print("done", flush=True)
