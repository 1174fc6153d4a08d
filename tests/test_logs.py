import io
import json
import logging
from collections.abc import Iterator

import pytest

from flow8.logs import (
    bind_log_context,
    configure_logging,
    get_logger,
    is_secret_key,
    log_context,
    redact,
    reset_log_context,
)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    yield stream
    logging.getLogger().handlers.clear()


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_structlog_lines_are_json_with_level_and_time(captured: io.StringIO) -> None:
    get_logger("flow8.test").info("play_started", play_id="p1", steps=3)
    (line,) = _lines(captured)
    assert line["event"] == "play_started"
    assert line["play_id"] == "p1"
    assert line["steps"] == 3
    assert line["level"] == "info"
    assert line["logger"] == "flow8.test"
    assert str(line["timestamp"]).endswith("Z")


def test_stdlib_records_share_the_format(captured: io.StringIO) -> None:
    logging.getLogger("hypercorn.error").warning("Running on %s", "http://127.0.0.1:1")
    (line,) = _lines(captured)
    assert line["event"] == "Running on http://127.0.0.1:1"
    assert line["level"] == "warning"


def test_secret_fields_are_redacted_at_any_depth(captured: io.StringIO) -> None:
    get_logger("t").info(
        "login",
        email="a@example.com",
        password="canary-pw",
        headers={"Authorization": "Bearer canary-token", "Accept": "json"},
        items=[{"api_key": "canary-key"}],
    )
    text = captured.getvalue()
    assert "canary" not in text
    (line,) = _lines(captured)
    assert line["email"] == "a@example.com"
    assert line["headers"] == {"Authorization": "***", "Accept": "json"}


def test_level_filtering_and_bad_level() -> None:
    stream = io.StringIO()
    configure_logging("warning", "json", stream)
    get_logger("t").info("hidden")
    get_logger("t").error("shown")
    assert [line["event"] for line in _lines(stream)] == ["shown"]
    logging.getLogger().handlers.clear()
    with pytest.raises(ValueError, match="LOG_LEVEL must be one of"):
        configure_logging("loud")


@pytest.mark.parametrize(
    ("key", "secret"),
    [("password", True), ("csrf_token", True), ("X-Api-Key", True), ("set-cookie", True),
     ("encryption_keys", True), ("idempotency_key_hint", False), ("email", False),
     ("company_id", False)],
)  # fmt: skip
def test_secret_key_names(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret
    assert (redact({key: "v"})[key] == "***") is secret


def test_log_context_is_on_every_line_until_it_is_left(captured: io.StringIO) -> None:
    log = get_logger("t")
    with log_context(correlation_id="req-1", trace_id=None):
        log.info("inside")
        with log_context(correlation_id=None, play_id="p1"):
            log.info("hidden")  # None hides a value bound further out
        log.info("back", correlation_id="explicit")  # a field given to the call wins
    log.info("outside")
    bound = bind_log_context(play_id="p2")
    log.info("bound")
    reset_log_context(bound)
    log.info("reset")
    lines = {line["event"]: line for line in _lines(captured)}
    assert lines["inside"]["correlation_id"] == "req-1"
    assert "trace_id" not in lines["inside"]
    assert "correlation_id" not in lines["hidden"]
    assert lines["hidden"]["play_id"] == "p1"
    assert lines["back"]["correlation_id"] == "explicit"
    assert "play_id" not in lines["back"]
    assert "correlation_id" not in lines["outside"]
    assert lines["bound"]["play_id"] == "p2"
    assert "play_id" not in lines["reset"]
