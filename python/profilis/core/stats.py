"""``StatsStore``: the settings of the reader's rolling statistics, and
custom metrics.

    stats = StatsStore(window_minutes=15, max_errors=100, max_routes=1000)
    stats.record_custom("process_duration", 1234.0)
    stats.get_custom_metrics()   # {"process_duration": {"count": 1, "avg": 1234.0, ...}}

The statistics live in the reader sidecar (``--window-minutes``,
``--max-errors``, ``--max-routes``): every process of the app shares them.
``get_custom_metrics`` and ``snapshot`` read them from the reader as of its
last snapshot (every ``flush_interval``).
"""

from __future__ import annotations

from typing import Any, Dict

from profilis import _native
from profilis.core.sidecar import sidecar

__all__ = ["StatsStore"]


class StatsStore:
    """Settings of the reader's statistics.

    :param window_minutes: length of the rolling window (1 to 1440).
    :param max_errors: latest errors kept (0 or more).
    :param max_routes: distinct routes, functions, queries and custom
        metrics tracked per kind (1 to 1000000); further names share one
        ``(other)`` entry.
    """

    def __init__(self, window_minutes: int = 15, max_errors: int = 100, max_routes: int = 1000) -> None:
        self.window_minutes = _int_in("window_minutes", window_minutes, 1, 1440)
        self.max_errors = _int_in("max_errors", max_errors, 0, 1 << 32)
        self.max_routes = _int_in("max_routes", max_routes, 1, 1_000_000)
        sidecar().configure(
            "stats",
            [
                "--window-minutes",
                str(self.window_minutes),
                "--max-errors",
                str(self.max_errors),
                "--max-routes",
                str(self.max_routes),
            ],
        )

    @staticmethod
    def record_custom(name: str, value: float) -> bool:
        """Records one sample of a custom metric (a CUSTOM event); False
        when it was not written (see ``profilis.emit_custom``)."""
        return _native.emit_custom(name, float(value))

    def get_custom_metrics(self) -> Dict[str, Dict[str, float]]:
        """Every custom metric in the window: ``{name: {count, avg, min,
        max, last}}``. ``RuntimeError`` when no reader runs."""
        return {
            m["name"]: {k: m[k] for k in ("count", "avg", "min", "max", "last")}
            for m in self.snapshot().get("custom", [])
        }

    def snapshot(self) -> Dict[str, Any]:
        """The reader's whole statistics document (``metrics.json``)."""
        return sidecar().fetch("metrics.json")


def _int_in(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"StatsStore: {name} must be an int, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"StatsStore: {name} must be in {low}..{high}, got {value}")
    return value
