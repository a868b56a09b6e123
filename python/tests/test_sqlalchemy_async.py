"""SQLAlchemy's asyncio engine (aiosqlite): DB events carry the trace of
the task that awaited the query, even with tasks interleaved."""

from __future__ import annotations

import asyncio

import pytest

import profilis
from profilis.sqlalchemy import instrument

pytest.importorskip("aiosqlite")
pytest.importorskip("greenlet")

from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402


def test_async_engine_queries_link_to_their_task(tmp_path, drain):
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'async.db'}")
    assert instrument(engine) is engine

    async def setup():
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT)"))
            await conn.execute(text("INSERT INTO jobs (id, state) VALUES (1, 'new'), (2, 'new')"))

    async def job(i):
        with profilis.use_span(f"async.job{i}") as span:
            async with engine.begin() as conn:
                await conn.execute(text(f"UPDATE jobs SET state = 'running' WHERE id = {i}"))
                await asyncio.sleep(0)
                rows = (await conn.execute(text(f"SELECT state FROM jobs WHERE id = {i}"))).all()
            assert rows == [("running",)]
            return span.trace_id, span.span_id

    async def main():
        await setup()
        spans = await asyncio.gather(job(1), job(2))
        await engine.dispose()
        return spans

    spans = asyncio.run(main())
    events = drain()
    queries = [e for e in events if e["kind"] == "DB"]
    for trace, span in spans:
        mine = [q for q in queries if q.get("trace_id") == trace]
        assert [q["name"] for q in mine] == [
            "UPDATE jobs SET state = ? WHERE id = ?",
            "SELECT state FROM jobs WHERE id = ?",
        ], queries
        assert all(q["span_id"] == span for q in mine)
        assert mine[0]["rows"] == 1
    setup_queries = [q for q in queries if q.get("trace_id") is None]
    assert [q["name"] for q in setup_queries][:2] == [
        "CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT)",
        "INSERT INTO jobs (id, state) VALUES (?, ?)",  # rows collapse into one
    ]
