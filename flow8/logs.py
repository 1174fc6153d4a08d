"""Structured JSON logging (structlog), with secrets redacted before anything is rendered.

Every log line is one JSON object on stderr: ``{"event", "level", "timestamp", "logger", ...}``.
Records from the standard library (Hypercorn, pymongo, ...) go through the same processors, so
ops get one format. Redaction works on key names: a value under a secret-looking key is replaced
by ``"***"`` at any depth, because the safest secret is the one never written.

Context (``log_context``): what is bound there is on every line the task logs meanwhile, and
on those of the tasks it starts (Trio copies a task's context variables into the tasks it
spawns, and into worker threads): an HTTP request's ``correlation_id``, a play's ``play_id``.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["json", "console"]

REDACTED = "***"
_SECRET_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|authori[sz]ation|cookie|api[_-]?key|private[_-]?key|"
    r"encryption[_-]?keys?|credential|session[_-]?id)$",
    re.IGNORECASE,
)
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL}  # fmt: skip


def is_secret_key(key: str) -> bool:
    """Whether a field named ``key`` holds a secret (password, token, cookie, api key, ...)."""
    return bool(_SECRET_KEY.search(key.replace("-", "_")))


def redact(value: Any) -> Any:
    """``value`` with every entry under a secret-looking key replaced by ``"***"``."""
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and is_secret_key(k) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def _redact_event(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    return redact(event_dict)  # type: ignore[no-any-return]


def configure_logging(
    level: str = "info", fmt: LogFormat = "json", stream: TextIO | None = None
) -> None:
    """Send structlog and standard-library logging to ``stream`` (stderr) as JSON lines."""
    numeric = _LEVELS.get(level.lower())
    if numeric is None:
        raise ValueError(f"LOG_LEVEL must be one of {', '.join(_LEVELS)}, got {level!r}")
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_event,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # httpx logs every request at info; flow8's own outbound calls are logged where they matter.
    logging.getLogger("httpx").setLevel(max(numeric, logging.WARNING))
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structured logger; keyword arguments become JSON fields."""
    return structlog.stdlib.get_logger(name)


Bound = Mapping[str, contextvars.Token[Any]]


def bind_log_context(**values: Any) -> Bound:
    """Put ``values`` on every line logged from now on by this task (and the tasks it starts
    from now on); a value of None hides one bound further out. Returns what
    :func:`reset_log_context` takes to put things back as they were."""
    if None in values.values():  # Ellipsis is how structlog's merge_contextvars skips a key
        values = {k: ... if v is None else v for k, v in values.items()}
    return structlog.contextvars.bind_contextvars(**values)


def reset_log_context(bound: Bound) -> None:
    """Undo a :func:`bind_log_context` (in the same task)."""
    structlog.contextvars.reset_contextvars(**bound)


@contextlib.contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """:func:`bind_log_context` for the duration of a ``with`` block."""
    bound = bind_log_context(**values)
    try:
        yield
    finally:
        reset_log_context(bound)
