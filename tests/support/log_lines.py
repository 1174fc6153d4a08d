"""The JSON log lines flow8 writes (``flow8.logs``), captured for a test to read."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from flow8.logs import configure_logging


class LogLines:
    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._stream.getvalue().splitlines()]

    def named(self, event: str) -> list[dict[str, Any]]:
        """The lines whose ``event`` is ``event``, in the order they were written."""
        return [line for line in self.all() if line.get("event") == event]


@contextmanager
def captured_logs() -> Iterator[LogLines]:
    """Logging configured as ``flow8 serve`` does (JSON lines, debug level) into a buffer;
    structlog's configuration and the standard loggers' are put back afterwards."""
    root, quiet = logging.getLogger(), logging.getLogger("httpx")
    handlers, level, quiet_level = list(root.handlers), root.level, quiet.level
    config = structlog.get_config()
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    try:
        yield LogLines(stream)
    finally:
        structlog.configure(**config)
        root.handlers[:] = handlers
        root.setLevel(level)
        quiet.setLevel(quiet_level)
