"""Exporters of the classic Profilis API: settings objects for the
``profilis-reader`` sidecar that :class:`profilis.core.async_collector.AsyncCollector`
starts. They write nothing themselves; the reader writes the events."""

from profilis.exporters.console import ConsoleExporter
from profilis.exporters.jsonl import JSONLExporter

__all__ = ["ConsoleExporter", "JSONLExporter"]
