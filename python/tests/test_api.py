"""The core Python API: emits, spans, context propagation, the decorator,
traceparent helpers, redaction and sampling, checked against what the
Rust consumer decodes from the ring."""

from __future__ import annotations

import asyncio
import hashlib
import threading

import pytest

import profilis


def by_name(events, name):
    return [e for e in events if e["name"] == name]


def only(events, name):
    found = by_name(events, name)
    assert len(found) == 1, (name, events)
    return found[0]


def test_emits_record_every_field(drain):
    assert profilis.emit_fn("api.fn", 1500)
    assert profilis.emit_fn("api.fn_failed", 2500, error=True)
    assert profilis.emit_req(
        "/api/items/<int:id>", 201, 3_000_000, method="POST", bytes_in=12, bytes_out=34
    )
    assert profilis.emit_req("/api/fail", 503, 10, method="GET", error=TimeoutError("upstream slow"))
    assert profilis.emit_db("SELECT * FROM items WHERE id = 7 AND name = 'x'", 4000, rows=3)
    assert profilis.emit_db("SELECT 1 -- already clean", 10, redact=False)
    assert profilis.emit_custom("api.queue_depth", 2.25)
    events = drain()
    assert len(events) == 7

    fn = only(events, "api.fn")
    assert (fn["kind"], fn["dur_ns"], fn["error"]) == ("FN", 1500, False)
    assert fn.get("trace_id") is None
    assert only(events, "api.fn_failed")["error"] is True

    req = only(events, "/api/items/<int:id>")
    assert (req["kind"], req["method"], req["status"]) == ("REQ", "POST", 201)
    assert (req["dur_ns"], req["bytes_in"], req["bytes_out"], req["error"]) == (3_000_000, 12, 34, False)

    failed = only(events, "/api/fail")
    assert (failed["status"], failed["error"]) == (503, True)
    assert failed["exception_type"] == "TimeoutError"
    assert failed["exception_message"] == "upstream slow"

    db = only(events, "SELECT * FROM items WHERE id = ? AND name = ?")
    assert (db["kind"], db["dur_ns"], db["rows"]) == ("DB", 4000, 3)
    assert only(events, "SELECT 1 -- already clean")["kind"] == "DB"
    assert only(events, "api.queue_depth")["value"] == 2.25
    assert all(e["pid"] == events[0]["pid"] for e in events)


def test_nested_spans_inherit_the_trace_and_record_parents(drain):
    assert profilis.get_trace_id() is None
    with profilis.use_span("api.outer") as outer:
        assert profilis.get_trace_id() == outer.trace_id
        assert profilis.get_span_id() == outer.span_id
        assert outer.parent_span_id is None
        with profilis.use_span("api.inner") as inner:
            assert inner.trace_id == outer.trace_id
            assert inner.parent_span_id == outer.span_id
            assert profilis.get_parent_span_id() == outer.span_id
            profilis.emit_db("UPDATE t SET a = 1", 10, rows=1)
        assert profilis.get_span_id() == outer.span_id
    assert profilis.get_trace_id() is None and profilis.get_span_id() is None

    events = drain()
    outer_event = only(events, "api.outer")
    inner_event = only(events, "api.inner")
    db = only(events, "UPDATE t SET a = ?")
    assert outer_event["trace_id"] == inner_event["trace_id"] == db["trace_id"] == outer.trace_id
    assert outer_event["span_id"] == outer.span_id
    assert outer_event.get("parent_span_id") is None
    assert inner_event["parent_span_id"] == outer.span_id
    assert db["span_id"] == inner.span_id
    assert outer_event["dur_ns"] >= inner_event["dur_ns"] > 0
    assert not outer_event["error"]
    assert outer_event["service"] == "python-tests"


def test_span_records_an_exception_that_propagates(drain):
    with pytest.raises(KeyError):
        with profilis.use_span("api.failing"):
            raise KeyError("missing-key")
    assert profilis.get_trace_id() is None
    event = only(drain(), "api.failing")
    assert event["error"] is True
    assert event["exception_type"] == "KeyError"
    # The message is the key's repr, a quoted value: redacted by default.
    assert event["exception_message"] == "?"


def test_profile_decorator_sync_async_and_generators(drain):
    @profilis.profile
    def add(a, b):
        return a + b

    @profilis.profile(name="api.custom_name")
    def fails():
        raise ValueError("bad input")

    @profilis.profile
    async def fetch(x):
        await asyncio.sleep(0)
        return add(x, 1)

    @profilis.profile
    def numbers(n):
        yield from range(n)

    assert add.__name__ == "add"
    assert add(2, 3) == 5
    with pytest.raises(ValueError):
        fails()
    assert asyncio.run(fetch(41)) == 42
    assert list(numbers(3)) == [0, 1, 2]

    @profilis.profile
    async def ticks(n):
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    async def collect():
        return [i async for i in ticks(2)]

    assert asyncio.run(collect()) == [0, 1]

    events = drain()
    adds = by_name(events, add.__qualname__)
    assert len(adds) == 2
    failed = only(events, "api.custom_name")
    assert (failed["error"], failed["exception_type"], failed["exception_message"]) == (True, "ValueError", "bad input")
    # The traceback as Python prints it: the caller (this test) behind the
    # profiled function, the raise, then the exception.
    stack = failed["stack"]
    assert stack.startswith("Traceback (most recent call last):\n")
    assert stack.index("in test_profile_decorator") < stack.index("in fails")
    # Source lines are redacted like messages (the quoted value), frame
    # locations are kept (docs/privacy.md).
    assert "raise ValueError(?)" in stack
    assert stack.endswith("ValueError: bad input\n")
    assert "stack" not in only(events, fetch.__qualname__)
    fetched = only(events, fetch.__qualname__)
    inner_add = next(e for e in adds if e["trace_id"] == fetched["trace_id"])
    assert inner_add["parent_span_id"] == fetched["span_id"]
    assert only(events, numbers.__qualname__)["kind"] == "FN"
    assert only(events, ticks.__qualname__)["kind"] == "FN"


@profilis.profile
def module_level_profiled(x):
    """Doubles x."""
    return 2 * x


def test_profiled_plain_functions_keep_their_metadata_and_bind_as_methods(drain):
    import functools
    import inspect
    import pickle
    import weakref

    def original(a, b=2, *rest, key=None, **more):
        """Adds."""
        return a + b

    original.marker = "kept"
    wrapped = profilis.profile(original)
    assert isinstance(wrapped, profilis.ProfiledFunction)
    assert wrapped.__wrapped__ is original
    assert (wrapped.__name__, wrapped.__qualname__) == ("original", original.__qualname__)
    assert (wrapped.__doc__, wrapped.__module__) == ("Adds.", __name__)
    assert wrapped.marker == "kept"
    assert wrapped.profile_name == original.__qualname__
    assert inspect.signature(wrapped) == inspect.signature(original)
    assert weakref.ref(wrapped)() is wrapped
    assert wrapped(1, b=4, key=3) == 5
    assert pickle.loads(pickle.dumps(module_level_profiled)) is module_level_profiled
    assert "original" in repr(wrapped)

    class Counter:
        def __init__(self):
            self.n = 0

        @profilis.profile
        def bump(self, by=1):
            """Adds to n."""
            self.n += by
            return profilis.get_span_id()

        @staticmethod
        @profilis.profile
        def static(x):
            return x + 1

        @classmethod
        @profilis.profile
        def build(cls):
            return cls()

        @functools.cached_property
        @profilis.profile
        def once(self):
            return self.n

    c = Counter()
    assert Counter.bump is Counter.__dict__["bump"]
    assert Counter.bump.__doc__ == "Adds to n."
    bound = c.bump
    assert bound.__self__ is c and bound.__func__ is Counter.__dict__["bump"]
    assert c.bump(by=2) is not None and c.n == 2
    assert Counter.bump(c) is not None and c.n == 3
    assert Counter.static(1) == 2 and c.static(2) == 3
    assert isinstance(Counter.build(), Counter)
    assert c.once == 3

    with profilis.use_span("api.caller") as caller:
        span_inside = c.bump()
        assert profilis.get_span_id() == caller.span_id

    events = drain()
    bumps = by_name(events, Counter.bump.__qualname__)
    assert len(bumps) == 3
    inner = next(e for e in bumps if e["trace_id"] == caller.trace_id)
    assert inner["span_id"] == span_inside
    assert inner["parent_span_id"] == caller.span_id
    assert len(by_name(events, original.__qualname__)) == 1
    assert len(by_name(events, Counter.__dict__["static"].__func__.__qualname__)) == 2
    assert len(by_name(events, Counter.__dict__["once"].func.__qualname__)) == 1
    assert len(by_name(events, Counter.build.__func__.__qualname__)) == 1


def test_contexts_kept_from_profiled_calls_keep_their_ids(drain):
    import contextvars

    kept = []

    @profilis.profile(name="api.capture")
    def capture():
        kept.append((contextvars.copy_context(), profilis.get_span_id()))

    @profilis.profile(name="api.recurse")
    def recurse(n):
        ids = [(profilis.get_span_id(), profilis.get_parent_span_id())]
        return ids + (recurse(n - 1) if n else [])

    for _ in range(3):
        capture()
        chain = recurse(3)
    # A thread that ends with spare contexts of its own.
    worker = threading.Thread(target=lambda: [capture() for _ in range(2)])
    worker.start()
    worker.join()
    # Later calls did not rewrite the context a copy kept.
    assert len({span for _, span in kept}) == 5
    for ctx, span in kept:
        assert ctx.run(profilis.get_span_id) == span
    assert [parent for _, parent in chain[1:]] == [span for span, _ in chain[:-1]]
    assert chain[0][1] is None
    events = drain()
    assert len(by_name(events, "api.capture")) == 5
    assert len(by_name(events, "api.recurse")) == 12


def test_profiled_call_records_the_exception_and_reraises_it(drain):
    class Boom(RuntimeError):
        pass

    @profilis.profile(name="api.boom")
    def boom(message):
        raise Boom(message)

    with pytest.raises(Boom, match="went wrong") as info:
        boom("went wrong")
    # The traceback still reaches the function's own frame.
    assert info.traceback[-1].name == "boom"
    assert profilis.get_trace_id() is None

    @profilis.profile(name="api.unreadable")
    def unreadable():
        class Odd(Exception):
            def __str__(self):
                raise TypeError("no text")

        raise Odd()

    with pytest.raises(Exception) as odd:
        unreadable()
    assert type(odd.value).__name__ == "Odd"

    @profilis.profile(name="api.interrupted")
    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()

    events = drain()
    event = only(events, "api.boom")
    assert (event["error"], event["exception_type"], event["exception_message"]) == (True, "Boom", "went wrong")
    assert event.get("parent_span_id") is None
    assert only(events, "api.unreadable")["error"] is True
    interrupted_event = only(events, "api.interrupted")
    assert (interrupted_event["error"], interrupted_event["exception_type"]) == (True, "KeyboardInterrupt")


def test_a_span_never_left_is_collected_with_its_context(ring):
    import contextvars
    import gc
    import sys

    name = "".join(["api.", "never_left"])  # a string object of its own
    before = sys.getrefcount(name)

    def enter_only():
        profilis.use_span(name).__enter__()
        assert profilis.get_trace_id() is not None

    contextvars.copy_context().run(enter_only)
    assert profilis.get_trace_id() is None
    gc.collect()
    assert sys.getrefcount(name) == before


def test_asyncio_tasks_keep_their_own_context(drain):
    async def worker(name, ready, go):
        with profilis.use_span(name) as span:
            ready.set()
            await go.wait()  # the other task runs in between
            assert profilis.get_trace_id() == span.trace_id
            profilis.emit_fn(name + ".step", 5)
            child = await asyncio.create_task(child_task())
            assert child == span.trace_id
            return span.trace_id

    async def child_task():
        return profilis.get_trace_id()

    async def main():
        go = asyncio.Event()
        ready = [asyncio.Event(), asyncio.Event()]
        tasks = [asyncio.create_task(worker(f"api.task{i}", ready[i], go)) for i in range(2)]
        for r in ready:
            await r.wait()
        go.set()
        return await asyncio.gather(*tasks)

    traces = asyncio.run(main())
    assert traces[0] != traces[1]
    events = drain()
    for i, trace in enumerate(traces):
        assert only(events, f"api.task{i}.step")["trace_id"] == trace
        assert only(events, f"api.task{i}")["trace_id"] == trace


def test_threads_start_without_the_parent_context():
    seen = []
    with profilis.use_span("api.thread_parent"):
        thread = threading.Thread(target=lambda: seen.append(profilis.get_trace_id()))
        thread.start()
        thread.join()
    assert seen == [None]


def test_traceparent_in_and_out(drain):
    header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    parent = profilis.parse_traceparent(header)
    assert parent.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert parent.span_id == "b7ad6b7169203331"
    assert parent.sampled and parent.traceparent() == header
    with pytest.raises(ValueError, match="traceparent"):
        profilis.parse_traceparent("00-not-a-header")

    assert profilis.traceparent() is None
    with profilis.use_span("api.continued", traceparent=header) as span:
        assert span.trace_id == parent.trace_id
        assert span.parent_span_id == "b7ad6b7169203331"
        out = profilis.traceparent()
        assert out == f"00-{span.trace_id}-{span.span_id}-01"
    event = only(drain(), "api.continued")
    assert event["trace_id"] == parent.trace_id
    assert event["parent_span_id"] == "b7ad6b7169203331"


def test_explicit_ids_as_in_the_original_api(drain):
    trace = profilis.new_trace_id()
    span = profilis.span_id()
    assert len(trace) == 32 and len(span) == 16 and span != profilis.span_id()
    with profilis.use_span(trace_id=trace, span_id=span):
        assert (profilis.get_trace_id(), profilis.get_span_id()) == (trace, span)
        profilis.emit_fn("api.explicit", 1)
    event = only(drain(), "api.explicit")
    assert (event["trace_id"], event["span_id"]) == (trace, span)
    with pytest.raises(ValueError):
        profilis.use_span(trace_id="xyz")
    with pytest.raises(ValueError):
        profilis.use_span(trace_id="0" * 16)


def test_a_trace_id_made_by_span_id_is_widened(drain):
    # The classic snippet, under its classic import: a 64-bit id as a trace
    # id, carried as W3C says, with 16 leading zeros.
    from profilis.runtime import get_span_id, get_trace_id, span_id, use_span

    short = span_id()
    with use_span(trace_id=short):
        inner = span_id()
        with use_span(span_id=inner):
            assert (get_trace_id(), get_span_id()) == ("0" * 16 + short, inner)
            profilis.emit_fn("api.short_trace", 1)
    event = only(drain(), "api.short_trace")
    assert event["trace_id"] == "0" * 16 + short
    assert profilis.sampled(short, 1.0)


def test_unsampled_traces_record_nothing(drain):
    header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    scope = profilis.start_request(header, 0.0)
    assert not scope.sampled
    assert profilis.get_trace_id() == "0af7651916cd43dd8448eb211c80319c"
    assert not profilis.emit_fn("api.unsampled", 1)
    with profilis.use_span("api.unsampled_span"):
        pass
    assert not scope.finish("/unsampled", "GET", 200)
    assert profilis.get_trace_id() is None
    assert drain() == []


def test_a_request_scope_records_what_start_and_respond_gave(drain):
    scope = profilis.start_request(None, 1.0, "/items/<int:id>", "PUT", " 12 ")
    assert profilis.get_trace_id() == scope.trace_id
    scope.respond(201, "34")
    assert scope.end()
    assert profilis.get_trace_id() is None
    assert not scope.end()  # only the first end records

    failed = profilis.start_request(None, 1.0, "/boom", "GET", "not a number")
    assert failed.end(ValueError("exploded"))  # no response: a 500

    unsampled = profilis.start_request(None, 0.0, "/skipped", "GET", 5)
    unsampled.respond(200, 7)
    assert not unsampled.end()
    assert profilis.get_trace_id() is None

    routeless = profilis.start_request()
    with pytest.raises(ValueError, match="route"):
        routeless.end()
    assert profilis.get_trace_id() is None

    events = drain()
    item = only(events, "/items/<int:id>")
    assert (item["kind"], item["method"], item["status"]) == ("REQ", "PUT", 201)
    assert (item["bytes_in"], item["bytes_out"]) == (12, 34)
    assert item["span_id"] == scope.context.span_id and not item["error"]
    boom = only(events, "/boom")
    assert (boom["status"], boom["bytes_in"], boom["bytes_out"]) == (500, 0, 0)
    assert (boom["error"], boom["exception_type"], boom["exception_message"]) == (True, "ValueError", "exploded")
    assert by_name(events, "/skipped") == []
    assert len(events) == 2


def trace_ids(n):
    return [hashlib.sha256(str(i).encode()).hexdigest()[:32] for i in range(n)]


def test_sampling_is_deterministic_per_trace():
    ids = trace_ids(4000)
    kept = [t for t in ids if profilis.sampled(t, 0.25)]
    assert kept == [t for t in ids if profilis.sampled(t, 0.25)]
    assert 800 < len(kept) < 1200
    # A higher rate keeps a superset.
    assert set(kept) <= {t for t in ids if profilis.sampled(t, 0.5)}
    assert all(profilis.sampled(t, 1.0) for t in ids[:50])
    assert not any(profilis.sampled(t, 0.0) for t in ids[:50])


def test_redaction_uses_the_rust_redactor():
    assert (
        profilis.redact_sql("SELECT * FROM users WHERE email = 'ann@example.com' AND age > 30")
        == "SELECT * FROM users WHERE email = ? AND age > ?"
    )
    # SQLite and MySQL read double-quoted text as a string: redacted where
    # a value can stand, kept where only a name can.
    assert (
        profilis.redact_sql('SELECT "name" FROM "users" WHERE email = "ann@secret.example"')
        == 'SELECT ? FROM "users" WHERE email = ?'
    )
    assert (
        profilis.redact_sql('INSERT INTO "t" ("a", "b") VALUES ("x", \'y\')')
        == 'INSERT INTO "t" ("a", "b") VALUES (?, ?)'
    )


def test_double_quoted_values_never_reach_the_ring(drain):
    drain()
    assert profilis.emit_db('UPDATE "t" SET "c" = "ann@secret.example" WHERE "id" = 7', 10)
    (event,) = drain()
    assert (event["kind"], event["name"]) == ("DB", 'UPDATE "t" SET "c" = ? WHERE ? = ?')


def test_names_are_interned_once(ring):
    first = profilis.intern("api.interned")
    assert profilis.intern("api.interned") == first
    assert profilis.intern("api.other") != first


def test_init_is_once_per_process(ring):
    assert profilis.init(ring) == ring
    assert profilis.ring_path() == ring and profilis.is_initialized()
    with pytest.raises(RuntimeError, match="one ring per process"):
        profilis.init(ring + ".other")


def test_counters_account_for_every_event(drain):
    before = profilis.counters()
    for _ in range(10):
        profilis.emit_fn("api.counted", 1)
    after = profilis.counters()
    assert after["claimed"] - before["claimed"] == 10
    assert after["dropped"] == 0
    assert len(drain()) == 10


def test_overwritten_exception_texts_are_counted(drain):
    # The ring keeps the texts of the latest 256 exception messages; the
    # reader counts every event whose text was overwritten before it read it.
    before = profilis.counters()["messages_unread"]
    # Numbered texts, so message rules off (digits would be redacted).
    profilis.set_message_rules("off")
    try:
        for i in range(256 + 40):
            profilis.emit_req("/api/lost", 500, 10, error=RuntimeError(f"failure {i}"))
    finally:
        profilis.set_message_rules("all")
    events = drain()
    assert len(events) == 296
    texts = [e.get("exception_message") for e in events]
    assert texts[:40] == [None] * 40
    assert texts[40:] == [f"failure {i}" for i in range(40, 296)]
    assert profilis.counters()["messages_unread"] - before == 40
