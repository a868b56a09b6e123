"""``AsyncCollector``: the ring the process writes to, and the one
``profilis-reader`` that drains it with the exporters' settings.

    collector = AsyncCollector(JSONLExporter(dir="./logs"), queue_size=2048,
                               batch_max=128, flush_interval=0.1, drop_oldest=True)

Events go from the emitting thread straight into the shared-memory ring
(one native call); the "asynchronous" part is the reader, a separate
process started and supervised as described in
:mod:`profilis.core.sidecar`.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Optional, Union

import profilis
from profilis.core.sidecar import sidecar
from profilis.exporters.console import ConsoleExporter
from profilis.exporters.jsonl import JSONLExporter

__all__ = ["AsyncCollector", "MAX_QUEUE_SIZE", "MIN_QUEUE_SIZE"]

#: Ring capacity limits (slots); ``queue_size`` is rounded up to a power of
#: two within them.
MIN_QUEUE_SIZE = 64
MAX_QUEUE_SIZE = 1 << 24

Exporter = Union[JSONLExporter, ConsoleExporter]


class AsyncCollector:
    """Opens the ring and makes sure one reader drains it.

    :param exporter: a ``JSONLExporter``, a ``ConsoleExporter``, a list of
        them (at most one of each), or None (statistics and dashboard only).
    :param queue_size: ring capacity in events, rounded up to a power of
        two and raised to at least 64; at most 2^24. Applies when this
        process creates the ring (the first process to open it).
    :param batch_max: most events the reader takes per batch (1 to 1048576).
    :param flush_interval: seconds between the reader's statistics
        snapshots and file housekeeping (at least 0.001).
    :param drop_oldest: when the ring is full, overwrite the oldest unread
        event (counted as lost) instead of dropping the new one.
    :param ring: ring file (default: ``PROFILIS_RING`` or
        ``/dev/shm/profilis-<uid>.ring``).
    :param service: service name recorded when the ring is created.
    """

    def __init__(
        self,
        exporter: Union[None, Exporter, Iterable[Exporter]] = None,
        queue_size: int = 2048,
        batch_max: int = 128,
        flush_interval: float = 0.1,
        drop_oldest: bool = True,
        *,
        ring: Optional[str] = None,
        service: Optional[str] = None,
    ) -> None:
        self.exporters = _exporters(exporter)
        self.queue_max = _capacity(queue_size)
        self.batch_max = _int_in("batch_max", batch_max, 1, 1_048_576)
        if isinstance(flush_interval, bool) or not isinstance(flush_interval, (int, float)):
            raise TypeError(f"AsyncCollector: flush_interval must be seconds, got {flush_interval!r}")
        if not flush_interval >= 0.001:
            raise ValueError(f"AsyncCollector: flush_interval must be at least 0.001 s, got {flush_interval}")
        self.flush_interval = float(flush_interval)
        self.drop_oldest = bool(drop_oldest)
        policy = "overwrite-oldest" if self.drop_oldest else "drop-newest"
        self.ring = profilis.init(ring, capacity=self.queue_max, service=service, policy=policy)
        car = sidecar()
        car.queue_max = self.queue_max
        args: List[str] = []
        for e in self.exporters:
            args += e.reader_args()
        car.configure("exporters", args)
        car.configure(
            "collector",
            ["--batch-max", str(self.batch_max), "--flush-interval", f"{max(1, round(self.flush_interval * 1000))}ms"],
        )
        car.start(self.ring)

    @property
    def queue_size(self) -> int:
        """Events in the ring not drained yet (0 before the first look)."""
        counters = profilis.counters()
        return int(counters["in_flight"]) if counters else 0

    @property
    def reader_pid(self) -> Optional[int]:
        """Pid of the reader draining the ring, when one has announced
        itself (it may have been started by another process)."""
        state = sidecar().state()
        return int(state["reader_pid"]) if state else None

    def __repr__(self) -> str:
        return f"AsyncCollector(ring={self.ring!r}, exporters={self.exporters!r}, queue_max={self.queue_max})"


def _exporters(exporter: Any) -> List[Exporter]:
    if exporter is None:
        items: List[Any] = []
    elif isinstance(exporter, (JSONLExporter, ConsoleExporter)):
        items = [exporter]
    elif isinstance(exporter, (list, tuple)):
        items = list(exporter)
    else:
        raise TypeError(
            f"AsyncCollector: exporter must be a JSONLExporter, a ConsoleExporter or a list of them, got {exporter!r}"
        )
    for kind in (JSONLExporter, ConsoleExporter):
        if sum(isinstance(e, kind) for e in items) > 1:
            raise ValueError(f"AsyncCollector: at most one {kind.__name__} (the reader writes one stream of each)")
    for e in items:
        if not isinstance(e, (JSONLExporter, ConsoleExporter)):
            raise TypeError(f"AsyncCollector: not an exporter: {e!r}")
    return items


def _capacity(queue_size: Any) -> int:
    size = _int_in("queue_size", queue_size, 1, MAX_QUEUE_SIZE)
    capacity = 1 << (size - 1).bit_length()
    return max(MIN_QUEUE_SIZE, capacity)


def _int_in(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"AsyncCollector: {name} must be an int, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"AsyncCollector: {name} must be in {low}..{high}, got {value}")
    return value
