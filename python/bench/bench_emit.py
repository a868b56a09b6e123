"""Per-event cost of the Python API and per-request overhead of the Flask
adapter, each compared in the same run with its baseline.

    python python/bench/bench_emit.py [--batches 100] [--batch 1000] [--requests 3000]

Every figure is the mean cost of one operation within a batch (so the clock
is read once per batch, not per event); the table shows the median and the
99th percentile of the batch means. Baselines: a call to a Python function
that does nothing with the same arguments (for emits and spans), a plain
call of the same function (for `@profile`), and the same Flask app without
the adapter. No consumer runs, so the figures are the writer's own cost:
the ring has two lanes (one the benchmark's thread keeps, one shared) and
overwrites its oldest events, and it is written through once before
measuring, so every event is written into memory that is already mapped, as
in a ring that has been running a while (the first write into each page of
a new ring costs a page fault, about 10 us per 40 events, that would
otherwise dominate).

`compare_builds.py` runs this benchmark for two builds in turn and prints
the medians over the runs.

The Python original of Profilis documented up to 15 us to create an event
and up to 1 us to enqueue it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List

import profilis

ORIGINAL_CREATE_US = 15.0
ORIGINAL_ENQUEUE_US = 1.0


def measure(op: Callable[[int], None], batches: int, batch: int) -> Dict[str, float]:
    """Runs `op(batch)` `batches` times; returns ns per operation."""
    op(batch)  # warm up
    means: List[float] = []
    gc.disable()
    try:
        for _ in range(batches):
            start = time.perf_counter_ns()
            op(batch)
            means.append((time.perf_counter_ns() - start) / batch)
    finally:
        gc.enable()
    means.sort()
    return {
        "median_ns": statistics.median(means),
        "p99_ns": means[min(len(means) - 1, int(len(means) * 0.99))],
        "min_ns": means[0],
    }


def emit_benchmarks(batches: int, batch: int) -> Dict[str, Dict[str, float]]:
    def noop(name, dur_ns, error=None):
        return True

    emit_fn = profilis.emit_fn
    emit_db = profilis.emit_db
    use_span = profilis.use_span
    sql = "SELECT id, name FROM users WHERE id = 42 AND email = 'ann@example.com'"

    def loop_noop(n):
        for _ in range(n):
            noop("bench.fn", 1000)

    def loop_emit_fn(n):
        for _ in range(n):
            emit_fn("bench.fn", 1000)

    def loop_emit_fn_error_kw(n):
        for _ in range(n):
            emit_fn("bench.fn", 1000, error=False)

    def loop_emit_db(n):
        for _ in range(n):
            emit_db(sql, 1000, 1)

    def loop_use_span(n):
        for _ in range(n):
            with use_span("bench.span"):
                pass

    def plain():
        return 1

    @profilis.profile
    def profiled():
        return 1

    def loop_plain_call(n):
        for _ in range(n):
            plain()

    def loop_profiled_call(n):
        for _ in range(n):
            profiled()

    class Obj:
        def plain(self):
            return 1

        @profilis.profile
        def profiled(self):
            return 1

    obj = Obj()

    def loop_plain_method(n):
        for _ in range(n):
            obj.plain()

    def loop_profiled_method(n):
        for _ in range(n):
            obj.profiled()

    def loop_use_span_nested(n):
        with use_span("bench.outer"):
            for _ in range(n):
                with use_span("bench.span"):
                    pass

    results = {}
    for name, op in [
        ("noop_python_call", loop_noop),
        ("emit_fn", loop_emit_fn),
        ("emit_fn_error_kw", loop_emit_fn_error_kw),
        ("emit_db_redacted_cached", loop_emit_db),
        ("use_span_enter_exit", loop_use_span),
        ("plain_call", loop_plain_call),
        ("profile_decorated_call", loop_profiled_call),
        ("plain_method_call", loop_plain_method),
        ("profile_decorated_method_call", loop_profiled_method),
        ("use_span_in_a_trace", loop_use_span_nested),
    ]:
        results[name] = measure(op, batches, batch)
    return results


def flask_benchmarks(requests: int) -> Dict[str, Dict[str, float]]:
    try:
        from flask import Flask
    except ImportError:
        return {}
    from profilis.flask import ProfilisFlask

    def make(instrument, noop_hooks=False, **options):
        app = Flask("bench")

        @app.get("/users/<int:user_id>")
        def user(user_id):
            return {"id": user_id}

        if instrument:
            ProfilisFlask(app, **options)
        if noop_hooks:
            # The floor of any hook-based adapter: Flask calling a before,
            # an after and a teardown hook that do nothing.
            app.before_request(lambda: None)
            app.after_request(lambda response: response)
            app.teardown_request(lambda exc: None)
        return app.test_client()

    clients = {
        "flask_plain": make(False),
        "flask_noop_hooks": make(False, noop_hooks=True),
        "flask_profilis": make(True),
        "flask_profilis_sample_0.1": make(True, sample=0.1),
    }
    batch = 100
    batches = max(requests // batch, 5)
    results = {}
    # Interleave the apps batch by batch so drift hits all alike.
    samples: Dict[str, List[float]] = {k: [] for k in clients}
    for client in clients.values():
        for i in range(50):
            client.get(f"/users/{i}")
    gc.disable()
    try:
        for _ in range(batches):
            for name, client in clients.items():
                start = time.perf_counter_ns()
                for i in range(batch):
                    client.get(f"/users/{i}")
                samples[name].append((time.perf_counter_ns() - start) / batch)
    finally:
        gc.enable()
    for name, means in samples.items():
        ordered = sorted(means)
        results[name] = {
            "median_ns": statistics.median(ordered),
            "p99_ns": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            "min_ns": ordered[0],
        }
    # Overhead: the median over batches of (instrumented - plain), each
    # pair measured back to back, which cancels most of the drift of a
    # shared machine.
    for name in clients:
        if name != "flask_plain":
            diffs = sorted(a - b for a, b in zip(samples[name], samples["flask_plain"]))
            results[name]["overhead_ns"] = statistics.median(diffs)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--ring", help="ring file (default: a new one in a temporary directory)")
    args = parser.parse_args()

    # A lane of the thread's own, overwritten in turn (see the module
    # docstring).
    os.environ["PROFILIS_LANES"] = "2"
    os.environ["PROFILIS_POLICY"] = "overwrite-oldest"
    directory = tempfile.mkdtemp(prefix="profilis-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    ring = args.ring or os.path.join(directory, "bench.ring")
    capacity = 1 << 17
    profilis.init(ring, capacity=capacity)
    try:
        # Write through the ring once so that its pages are mapped.
        for _ in range(2 * capacity):
            profilis.emit_fn("bench.warm", 1)
        results = emit_benchmarks(args.batches, args.batch)
        results.update(flask_benchmarks(args.requests))
        counters = profilis.counters()
    finally:
        if not args.ring:
            try:
                os.unlink(ring)
                os.rmdir(directory)
            except OSError:
                pass

    # Each operation over its own baseline, and that as a multiple of a
    # bare emit_fn over its baseline.
    baselines = {
        "profile_decorated_call": "plain_call",
        "profile_decorated_method_call": "plain_method_call",
    }
    emit_over = results["emit_fn"]["median_ns"] - results["noop_python_call"]["median_ns"]
    print(f"python {sys.version.split()[0]}, {args.batches} batches x {args.batch}; ns per operation")
    print(f"{'operation':30} {'median':>9} {'p99':>9} {'over baseline':>14} {'x emit':>7}")
    for name, r in results.items():
        extra = ratio = ""
        if not name.startswith("flask"):
            base = results[baselines.get(name, "noop_python_call")]["median_ns"]
            over = r["median_ns"] - base
            r["over_baseline_ns"] = over
            extra = f"{over:+13.0f}"
            if emit_over > 0 and name not in ("noop_python_call", "plain_call", "plain_method_call"):
                ratio = f"{over / emit_over:7.2f}"
        print(f"{name:30} {r['median_ns']:9.0f} {r['p99_ns']:9.0f} {extra:>14} {ratio:>7}")
    if "flask_plain" in results:
        plain = results["flask_plain"]["median_ns"]
        floor = results["flask_noop_hooks"]["overhead_ns"]
        for name in ("flask_noop_hooks", "flask_profilis", "flask_profilis_sample_0.1"):
            overhead = results[name]["overhead_ns"]
            print(
                f"{name}: overhead {overhead:.0f} ns per request ({overhead / plain:.1%} of {plain / 1000:.0f} us)"
                + ("" if name == "flask_noop_hooks" else f", {overhead - floor:.0f} ns over three no-op hooks")
            )
    emit = results["emit_fn"]["median_ns"] / 1000
    print(
        f"emit_fn: {emit:.3f} us per event, all included (Python original: up to "
        f"{ORIGINAL_CREATE_US:.0f} us to create + up to {ORIGINAL_ENQUEUE_US:.0f} us to enqueue)"
    )
    print(f"dropped: {counters['dropped']} of {counters['claimed']} events ({counters['overwritten']} overwritten)")
    print(json.dumps({"results": results, "counters": counters}))
    return 0 if counters["dropped"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
