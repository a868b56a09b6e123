"""The trace context under the names of the classic Profilis API:
``from profilis.runtime import use_span, span_id, get_trace_id, get_span_id``.

The same functions as ``profilis.use_span`` and friends: the context lives
in a ``contextvars.ContextVar`` of the native module, so threads and asyncio
tasks each keep their own.

    with use_span(trace_id=span_id()):       # a 64-bit trace id, widened
        with use_span(span_id=span_id()):
            ...
"""

from profilis._native import (
    current_context,
    get_parent_span_id,
    get_span_id,
    get_trace_id,
    new_trace_id,
    span_id,
    traceparent,
    use_span,
)

__all__ = [
    "current_context",
    "get_parent_span_id",
    "get_span_id",
    "get_trace_id",
    "new_trace_id",
    "span_id",
    "traceparent",
    "use_span",
]
