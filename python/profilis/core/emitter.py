"""``Emitter``: the classic names of the native emit functions.

    emitter = Emitter(collector)
    emitter.emit_req("/api/users", 200, dur_ns=15_000_000)
    emitter.emit_fn("expensive_calculation", dur_ns=5_000_000, error=False)
    emitter.emit_db("SELECT * FROM users WHERE id = 7", dur_ns=8_000_000, rows=100)

Each method is the native function itself (one call into the extension,
no Python frame in between); SQL literals are redacted unless
``redact=False``. Events carry the current trace (``use_span``).
"""

from __future__ import annotations

from profilis import _native
from profilis.core.async_collector import AsyncCollector

__all__ = ["Emitter"]


class Emitter:
    """Records events into the ring of ``collector``."""

    emit_req = staticmethod(_native.emit_req)
    emit_fn = staticmethod(_native.emit_fn)
    emit_db = staticmethod(_native.emit_db)
    emit_custom = staticmethod(_native.emit_custom)

    def __init__(self, collector: AsyncCollector) -> None:
        if not isinstance(collector, AsyncCollector):
            raise TypeError(f"Emitter needs an AsyncCollector, got {collector!r}")
        self.collector = collector
