"""``JSONLExporter``: JSON lines files written by the reader sidecar
(``profilis-reader --jsonl-dir DIR --rotate-bytes N --rotate-secs N
--filename-template T``)."""

from __future__ import annotations

import os
import re
from typing import List, Union

__all__ = ["JSONLExporter"]

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_KNOWN = {"timestamp", "pid", "n"}


class JSONLExporter:
    """Events as JSON lines in files under ``dir`` (created if missing).

    :param dir: directory of the files.
    :param rotate_bytes: start a new file when the current one reaches
        this size (0: never).
    :param rotate_secs: start a new file when the current one is this old
        (0: never).
    :param filename_template: name of each closed file: ``{timestamp}``
        (UTC), ``{pid}`` (the reader's), ``{n}`` (files of this run); needs
        ``{timestamp}`` or ``{n}``. The file being written is
        ``current.jsonl``.

    Invalid settings raise ``ValueError``/``TypeError`` here, not later in
    the reader.
    """

    def __init__(
        self,
        dir: Union[str, "os.PathLike[str]"] = "./logs",
        rotate_bytes: int = 100 * 1024 * 1024,
        rotate_secs: int = 3600,
        filename_template: str = "profilis-{timestamp}.jsonl",
    ) -> None:
        if not isinstance(dir, (str, os.PathLike)) or not os.fspath(dir):
            raise TypeError(f"JSONLExporter: dir must be a non-empty path, got {dir!r}")
        self.dir = os.path.abspath(os.fspath(dir))
        self.rotate_bytes = _non_negative_int("rotate_bytes", rotate_bytes)
        self.rotate_secs = _non_negative_int("rotate_secs", rotate_secs)
        self.filename_template = _check_template(filename_template)

    def reader_args(self) -> List[str]:
        """The reader's command-line options for these settings."""
        return [
            "--jsonl-dir",
            self.dir,
            "--rotate-bytes",
            str(self.rotate_bytes),
            "--rotate-secs",
            str(self.rotate_secs),
            "--filename-template",
            self.filename_template,
        ]

    def __repr__(self) -> str:
        return (
            f"JSONLExporter(dir={self.dir!r}, rotate_bytes={self.rotate_bytes}, "
            f"rotate_secs={self.rotate_secs}, filename_template={self.filename_template!r})"
        )


def _non_negative_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"JSONLExporter: {name} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"JSONLExporter: {name} must be 0 (never) or more, got {value}")
    return value


def _check_template(template: object) -> str:
    if not isinstance(template, str):
        raise TypeError(f"JSONLExporter: filename_template must be a str, got {template!r}")
    if not template or "/" in template or template.startswith("."):
        raise ValueError(
            f"JSONLExporter: filename_template {template!r} must be a plain file name (no '/', not hidden)"
        )
    if template == "current.jsonl":
        raise ValueError("JSONLExporter: filename_template 'current.jsonl' is the name of the file being written")
    names = _PLACEHOLDER.findall(template)
    unknown = [n for n in names if n not in _KNOWN]
    if unknown or template.count("{") != len(names):
        raise ValueError(
            f"JSONLExporter: filename_template {template!r}: use the placeholders "
            "{timestamp}, {pid} and {n} only, each closed by '}'"
        )
    if not {"timestamp", "n"} & set(names):
        raise ValueError(
            f"JSONLExporter: filename_template {template!r} needs {{timestamp}} or {{n}} "
            "so rotated files get distinct names"
        )
    return template
