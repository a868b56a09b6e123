"""SQLAlchemy instrumentation: one DB event per statement executed.

    from sqlalchemy import create_engine
    from profilis.sqlalchemy import instrument

    engine = instrument(create_engine("sqlite:///app.db"))

Hooks the engine's ``before_cursor_execute`` / ``after_cursor_execute``
events (and ``handle_error`` for failed statements). Each event carries the
statement under its *redacted* text (literals become ``?``, by the Rust
redactor every Profilis writer uses), the time the driver took, the rows
the driver reports for INSERT/UPDATE/DELETE (``cursor.rowcount``; SELECT
rows are fetched later and count as 0), and the current trace context, so
queries made while a Flask request runs link to it. Works with async
engines too (``create_async_engine``): pass the ``AsyncEngine``.
"""

from __future__ import annotations

import time
from typing import Any

from profilis._native import emit_db

try:
    from sqlalchemy import event
except ImportError as exc:  # pragma: no cover - exercised without SQLAlchemy only
    raise ImportError("profilis.sqlalchemy needs SQLAlchemy: pip install sqlalchemy") from exc

__all__ = ["instrument", "uninstrument", "is_instrumented"]

_STARTS = "profilis_starts"
_now = time.monotonic_ns  # CLOCK_MONOTONIC, the clock of event timestamps


def _before_cursor_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    conn.info.setdefault(_STARTS, []).append(_now())


def _after_cursor_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    starts = conn.info.get(_STARTS)
    if not starts:
        return
    dur = _now() - starts.pop()
    rows = getattr(cursor, "rowcount", -1)
    emit_db(statement, dur, rows if isinstance(rows, int) and rows > 0 else 0)


def _handle_error(context: Any) -> None:
    conn = context.connection
    if conn is None:
        return
    starts = conn.info.get(_STARTS)
    if not starts:
        return
    dur = _now() - starts.pop()
    statement = context.statement or "<unknown statement>"
    emit_db(statement, dur, 0, error=context.original_exception)


_HOOKS = (
    ("before_cursor_execute", _before_cursor_execute),
    ("after_cursor_execute", _after_cursor_execute),
    ("handle_error", _handle_error),
)


def _sync_engine(engine: Any) -> Any:
    # AsyncEngine proxies a synchronous Engine; events live on that one.
    return getattr(engine, "sync_engine", engine)


def instrument(engine: Any) -> Any:
    """Records every statement ``engine`` (an ``Engine`` or ``AsyncEngine``)
    executes. Idempotent; returns ``engine``."""
    target = _sync_engine(engine)
    for name, hook in _HOOKS:
        if not event.contains(target, name, hook):
            event.listen(target, name, hook)
    return engine


def uninstrument(engine: Any) -> Any:
    """Stops recording statements of ``engine``; returns it."""
    target = _sync_engine(engine)
    for name, hook in _HOOKS:
        if event.contains(target, name, hook):
            event.remove(target, name, hook)
    return engine


def is_instrumented(engine: Any) -> bool:
    """Whether ``instrument`` was applied to ``engine``."""
    target = _sync_engine(engine)
    return all(event.contains(target, name, hook) for name, hook in _HOOKS)
