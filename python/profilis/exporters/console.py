"""``ConsoleExporter``: events printed by the reader sidecar on its
standard output, which is the application's (``profilis-reader --console
STYLE``)."""

from __future__ import annotations

from typing import List

__all__ = ["ConsoleExporter"]

_STYLES = ("pretty", "compact")


class ConsoleExporter:
    """Prints every event: ``pretty`` (aligned columns with trace ids and
    exception lines, coloured on a terminal) or ``compact`` (one short line
    each).

    :param pretty: the classic switch: ``True`` for ``pretty``, ``False``
        for ``compact``; ``style`` wins when both are given.
    """

    def __init__(self, pretty: bool = True, style: str = "") -> None:
        if style and style not in _STYLES:
            raise ValueError(f"ConsoleExporter: style must be one of {', '.join(_STYLES)}, got {style!r}")
        self.style = style or ("pretty" if pretty else "compact")

    def reader_args(self) -> List[str]:
        """The reader's command-line options for these settings."""
        return ["--console", self.style]

    def __repr__(self) -> str:
        return f"ConsoleExporter(style={self.style!r})"
