"""A real Flask app over a real SQLite database through SQLAlchemy, driven
by Flask's test client; the Rust consumer drains the ring and the REQ and
DB events must be there, with route templates, redacted SQL, and DB
events linked to their request's trace."""

from __future__ import annotations

import hashlib

import pytest
from flask import Flask, abort, jsonify, request
from sqlalchemy import create_engine, text

import profilis
from profilis.flask import UNMATCHED_ROUTE, ProfilisFlask
from profilis.sqlalchemy import instrument, is_instrumented, uninstrument

INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def make_app(tmp_path, **options):
    engine = instrument(create_engine(f"sqlite:///{tmp_path / 'app.db'}"))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT)"))
        conn.execute(
            text("INSERT INTO users (id, name, email) VALUES (1, 'Ann', 'ann@example.com'), (2, 'Bob', 'bob@example.com')")
        )
    app = Flask("profilis-test")
    app.testing = False  # unhandled exceptions become 500 responses

    @app.get("/users/<int:user_id>")
    def get_user(user_id):
        with engine.connect() as conn:
            row = conn.execute(
                text(f"SELECT id, name FROM users WHERE id = {user_id} AND email LIKE '%example.com'")
            ).first()
        if row is None:
            abort(404)
        return jsonify(id=row.id, name=row.name)

    @app.post("/users")
    def create_user():
        body = request.get_json()
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO users (name, email) VALUES (:name, :email)"),
                {"name": body["name"], "email": body["email"]},
            )
            conn.execute(text("UPDATE users SET name = 'x' WHERE id IN (1, 2)"))
        return jsonify(created=True), 201

    @app.get("/boom")
    def boom():
        with engine.connect() as conn:
            conn.execute(text("SELECT * FROM no_such_table WHERE id = 5"))
        return "unreachable"

    @app.get("/health")
    def health():
        return "ok"

    @app.get("/static/app.js")
    def asset():
        return "js"

    ProfilisFlask(app, **options)
    return app, engine


def reqs(events):
    return [e for e in events if e["kind"] == "REQ"]


def dbs(events):
    return [e for e in events if e["kind"] == "DB"]


def test_requests_and_queries_are_recorded_and_linked(tmp_path, drain):
    app, engine = make_app(tmp_path, exclude_routes=["/health", "/static"], traceparent_out=True)
    assert is_instrumented(engine)
    drain()  # the schema set-up above
    client = app.test_client()

    ok = client.get("/users/1", headers={"traceparent": INCOMING})
    assert ok.status_code == 200 and ok.get_json() == {"id": 1, "name": "Ann"}
    created = client.post("/users", json={"name": "Cy", "email": "cy@example.com"})
    assert created.status_code == 201
    assert client.get("/boom").status_code == 500
    assert client.get("/nowhere").status_code == 404
    assert client.get("/users/99").status_code == 404
    assert client.get("/health").status_code == 200
    assert client.get("/static/app.js").status_code == 200

    events = drain()
    requests = reqs(events)
    assert [(r["name"], r["method"], r["status"]) for r in requests] == [
        ("/users/<int:user_id>", "GET", 200),
        ("/users", "POST", 201),
        ("/boom", "GET", 500),
        (UNMATCHED_ROUTE, "GET", 404),
        ("/users/<int:user_id>", "GET", 404),
    ]
    get_ok, post, boom, unmatched, missing = requests

    # Continues the caller's trace; the response names the request's span.
    assert get_ok["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert get_ok["parent_span_id"] == "00f067aa0ba902b7"
    assert ok.headers["traceparent"] == f"00-{get_ok['trace_id']}-{get_ok['span_id']}-01"
    assert get_ok["bytes_out"] == len(ok.data) and get_ok["bytes_in"] == 0
    assert get_ok["dur_ns"] > 0 and not get_ok["error"]
    assert post["bytes_in"] == len(b'{"name": "Cy", "email": "cy@example.com"}')
    assert post["trace_id"] != get_ok["trace_id"] and post.get("parent_span_id") is None

    assert boom["error"] is True
    assert boom["exception_type"] == "OperationalError"
    # The driver's message: SQLAlchemy's own would quote the SQL and values.
    assert boom["exception_message"] == "no such table: no_such_table"
    # The view's frame and the driver's exception, innermost last.
    assert boom["stack"].startswith("Traceback (most recent call last):\n")
    # Source lines redacted like messages: the statement's quoted text goes.
    assert "conn.execute(text(?))" in boom["stack"] and "id = 5" not in boom["stack"]
    assert boom["stack"].endswith("sqlite3.OperationalError: no such table: no_such_table\n")
    assert not unmatched["error"] and unmatched["trace_id"]

    # Every DB event carries its request's trace and span; SQL is redacted.
    queries = dbs(events)
    by_trace = {}
    for q in queries:
        by_trace.setdefault(q["trace_id"], []).append(q)
    assert [q["name"] for q in by_trace[get_ok["trace_id"]]] == [
        "SELECT id, name FROM users WHERE id = ? AND email LIKE ?"
    ]
    assert by_trace[get_ok["trace_id"]][0]["span_id"] == get_ok["span_id"]
    post_queries = by_trace[post["trace_id"]]
    assert [q["name"] for q in post_queries] == [
        "INSERT INTO users (name, email) VALUES (?, ?)",
        "UPDATE users SET name = ? WHERE id IN (?)",
    ]
    assert [q["rows"] for q in post_queries] == [1, 2]
    [failed] = by_trace[boom["trace_id"]]
    assert failed["name"] == "SELECT * FROM no_such_table WHERE id = ?"
    assert failed["error"] and failed["exception_type"] == "OperationalError"
    # Recorded inside SQLAlchemy's error hook: the application frames that
    # led to the query come before the driver's.
    assert failed["stack"].index("in boom") < failed["stack"].index("in do_execute")
    assert failed["stack"].endswith("OperationalError: no such table: no_such_table\n")
    assert len(by_trace[missing["trace_id"]]) == 1
    assert set(by_trace) == {r["trace_id"] for r in (get_ok, post, boom, missing)}
    for q in queries:
        assert "example.com" not in q["name"] and "Cy" not in q["name"]
    uninstrument(engine)
    assert not is_instrumented(engine)


def trace_header(i):
    trace = hashlib.sha256(f"flask-{i}".encode()).hexdigest()[:32]
    return trace, f"00-{trace}-00f067aa0ba902b7-01"


def test_sampling_keeps_or_drops_whole_traces(tmp_path, drain):
    app, _ = make_app(tmp_path, sample=0.5)
    drain()
    client = app.test_client()
    sent = [trace_header(i) for i in range(40)]
    for _, header in sent:
        assert client.get("/users/2", headers={"traceparent": header}).status_code == 200
    events = drain()
    expected = {trace for trace, _ in sent if profilis.sampled(trace, 0.5)}
    assert 5 < len(expected) < 35
    assert {r["trace_id"] for r in reqs(events)} == expected
    assert {q["trace_id"] for q in dbs(events)} == expected
    assert len(reqs(events)) == len(dbs(events)) == len(expected)


def test_sample_zero_records_nothing_but_propagates(tmp_path, drain):
    app, _ = make_app(tmp_path, sample=0.0, traceparent_out=True)
    drain()
    response = app.test_client().get("/users/1", headers={"traceparent": INCOMING})
    assert response.status_code == 200
    assert drain() == []
    # The trace goes on downstream, marked as not sampled.
    header = profilis.parse_traceparent(response.headers["traceparent"])
    assert header.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert not header.sampled


def test_invalid_options_are_refused():
    with pytest.raises(ValueError):
        ProfilisFlask(sample=1.5)
    with pytest.raises(TypeError):
        ProfilisFlask(exclude_routes="/health")
