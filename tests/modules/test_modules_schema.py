"""The args and input validator: one wording on save and at run time, and schemas that
cannot reach the network."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from flow8.domain import parse_flow_definition
from flow8.engine import validate_definition
from flow8.modules import ArgsValidator, InvalidSchema, default_registry

ROUTER = default_registry().get("router")


def test_a_fault_reads_the_same_on_save_and_at_run_time() -> None:
    args: dict[str, Any] = {"routes": [{"condition": True}], "mode": "sometimes"}
    on_save = ROUTER.arg_problems(args, static=True)
    at_run_time = ROUTER.arg_problems(args)
    assert on_save == at_run_time
    assert ("routes.0", '"label" is a required property') in on_save
    assert ("mode", '"sometimes" is not one of "first" or "all"') in on_save


def test_values_are_quoted_briefly_and_non_json_is_named() -> None:
    validator = ArgsValidator({"type": "object", "properties": {"s": {"type": "integer"}}})
    [(path, message)] = validator.errors({"s": "x" * 5000})
    assert path == ("s",)
    assert len(message) <= 300
    assert validator.problems({"s": {1, 2}}) == [("", "is not JSON: Unsupported type: 'set'")]
    assert validator.problems({"s": 3}) == []


@pytest.fixture
def counting_server() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            body = b'{"type": "string"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/schema.json", hits
    finally:
        server.shutdown()
        server.server_close()


def test_a_remote_ref_is_never_fetched(counting_server: tuple[str, list[str]]) -> None:
    url, hits = counting_server
    with pytest.raises(InvalidSchema, match="Retrieval is disabled"):
        ArgsValidator({"$ref": url})
    definition = parse_flow_definition(
        {
            "name": "f",
            "inputSchema": {"type": "object", "properties": {"a": {"$ref": url}}},
            "flowlets": [{"ref": "a", "appId": "noop"}],
        }
    )
    [problem] = validate_definition(definition, default_registry())
    assert problem.path == "inputSchema"
    assert problem.message.startswith("is not a valid JSON Schema")
    assert hits == []


def test_a_backtracking_pattern_is_judged_without_backtracking() -> None:
    # Python's re takes about 2^n steps on this input; the validator answers at once.
    validator = ArgsValidator({"type": "string", "pattern": "^(a+)+$"})
    text = "a" * 64 + "!"
    assert validator.problems(text) == [("", f'"{text}" does not match "^(a+)+$"')]
    assert validator.problems("a" * 64) == []
