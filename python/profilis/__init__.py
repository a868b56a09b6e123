"""Profilis for Python: record request, function, database and custom
timings into a Profilis ring file at the cost of one native call per event.

The events land in the same shared-memory ring that Rust and C writers use;
``profilis-reader`` drains it (statistics, JSONL, Prometheus, dashboard).

    import profilis
    profilis.init()                      # PROFILIS_RING or /dev/shm/profilis-<uid>.ring
    profilis.emit_fn("load_user", 12_500)

    @profilis.profile
    def handler(): ...

    with profilis.use_span("batch"):
        profilis.emit_db("SELECT * FROM t WHERE id = 42", 80_000, rows=1)

Trace context lives in a ``contextvars.ContextVar``: threads and asyncio
tasks each keep their own, and tasks inherit the context they were created
in. Framework adapters: ``profilis.flask.ProfilisFlask`` and
``profilis.sqlalchemy.instrument``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from typing import Any, Callable, Optional, TypeVar, overload

from profilis._native import (
    ABI_VERSION,
    ProfiledFunction,
    RequestScope,
    Span,
    SpanContext,
    add_message_pattern,
    add_sql_pattern,
    clear_redaction_patterns,
    counters,
    current_context,
    emit_custom,
    emit_db,
    emit_fn,
    emit_req,
    get_parent_span_id,
    get_span_id,
    get_trace_id,
    init,
    intern,
    is_initialized,
    message_rules,
    mono_ns,
    new_trace_id,
    parse_traceparent,
    redact_message,
    redact_sql,
    ring_path,
    sampled,
    set_message_rules,
    span_id,
    start_request,
    traceparent,
    use_span,
)

__all__ = [
    "ABI_VERSION",
    "ProfiledFunction",
    "RequestScope",
    "Span",
    "SpanContext",
    "add_message_pattern",
    "add_sql_pattern",
    "clear_redaction_patterns",
    "counters",
    "current_context",
    "emit_custom",
    "emit_db",
    "emit_fn",
    "emit_req",
    "get_parent_span_id",
    "get_span_id",
    "get_trace_id",
    "init",
    "intern",
    "is_initialized",
    "message_rules",
    "mono_ns",
    "new_trace_id",
    "parse_traceparent",
    "profile",
    "redact_message",
    "redact_sql",
    "ring_path",
    "sampled",
    "set_message_rules",
    "span_id",
    "start_request",
    "traceparent",
    "use_span",
]

F = TypeVar("F", bound=Callable[..., Any])


def _debug_logging() -> None:
    """``PROFILIS_DEBUG=1``: the ``profilis`` logger at DEBUG, to stderr
    unless the application gave it a handler (the reader sidecar's lines
    and decisions go there)."""
    if os.environ.get("PROFILIS_DEBUG", "") in ("", "0"):
        return
    log = logging.getLogger("profilis")
    log.setLevel(logging.DEBUG)
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        log.addHandler(handler)


_debug_logging()


def _wrap(func: F, label: str) -> F:
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with use_span(label):
                return await func(*args, **kwargs)

        return async_wrapper  # type: ignore[return-value]

    if inspect.isasyncgenfunction(func):

        @functools.wraps(func)
        async def async_gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            # The context is not entered across yields: the caller's code
            # runs between them. The FN event times the whole iteration.
            start = mono_ns()
            error: Optional[BaseException] = None
            try:
                async for item in func(*args, **kwargs):
                    yield item
            except GeneratorExit:
                raise
            except BaseException as exc:
                error = exc
                raise
            finally:
                emit_fn(label, mono_ns() - start, error)

        return async_gen_wrapper  # type: ignore[return-value]

    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            start = mono_ns()
            error: Optional[BaseException] = None
            try:
                return (yield from func(*args, **kwargs))
            except GeneratorExit:
                raise
            except BaseException as exc:
                error = exc
                raise
            finally:
                emit_fn(label, mono_ns() - start, error)

        return gen_wrapper  # type: ignore[return-value]

    # A plain function: the native wrapper enters the span, calls it and
    # records the event; it takes the function's metadata as
    # functools.wraps gives it and binds to instances as a method.
    wrapper = ProfiledFunction(func, label)
    functools.update_wrapper(wrapper, func)
    return wrapper  # type: ignore[return-value]


@overload
def profile(func: F) -> F: ...


@overload
def profile(*, name: Optional[str] = None) -> Callable[[F], F]: ...


def profile(func: Optional[F] = None, *, name: Optional[str] = None) -> Any:
    """Records every call of a function as an FN event in its own span.

    Works on functions, coroutine functions, generators and async
    generators; ``@profile`` or ``@profile(name="label")``. The default name
    is the function's ``__qualname__``. Calls made inside inherit the
    span's trace; an exception that propagates flags the event as an error
    with the exception's type and message.
    """

    def decorate(f: F) -> F:
        label = name or getattr(f, "__qualname__", None) or getattr(f, "__name__", "<fn>")
        return _wrap(f, label)

    if func is not None:
        return decorate(func)
    return decorate
