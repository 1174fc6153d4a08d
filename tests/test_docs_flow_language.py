"""Every example of docs/flow-language.md runs through the real engine and gives what the
guide says it gives, so the guide cannot teach something flow8 does not do.

The convention (the guide's last section tells its readers the same). Markers are HTML
comments on a line of their own, invisible when the page is rendered; each names its example:

    <!-- example: NAME -->    the next ```json block is a flow, as POST /api/flows takes it;
                              it is saved through the flows service (validated as the API
                              validates it, company checks included), then run as a play
    <!-- input: NAME -->      the next ```json block is the play's input (default: null)
    <!-- setup: NAME -->      the next ```json block is what the company holds before the flow
                              is saved: {"components": [POST /api/components bodies],
                              "credentials": [POST /api/credentials bodies]}
    <!-- decisions: NAME approve reject -->
                              each time the play waits for an approval, the next decision is
                              taken through the plays service (POST /api/plays/{id}/approve or
                              /reject); a wait with no decision left, or a decision left over,
                              fails the example
    <!-- expect: NAME -->     the next ```json block is the expected result (required):
        {"state": "DONE",       the play's final state (required)
         "out": ...,            contained in the play's output
         "error": "text",       contained in the play's error
         "steps": {"REF": {     the step's layer; a step inside a loop is "REF[0]", "REF[1]"
             "state": "DONE", "args": ..., "output": ..., "error": "text", "attempts": 2}}}

"Contained": an object matches when each of its keys matches in the actual object (which
may hold more); an array matches an array of the same length, item by item; anything else
must be equal (1 and 1.0 are, true and 1 are not). Errors match as substrings.

Placeholders, replaced in every string of a flow and an input before they are used:

    <server>            the base URL of a local HTTP server this test runs (``Server``)
    <credential:NAME>   the id of the credential named NAME in the example's setup
    <flow:NAME>         the id of example NAME's flow, saved first in the same company

Every ```json block of the guide belongs to a marker, every example has an expect block, and
each example is one test case: none is skipped. Each runs in a company of its own on a fresh
store (``component_kit``); the example a ``<flow:NAME>`` names is saved there first, with its
setup.
"""

from __future__ import annotations

import http.server
import json
import re
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from support.waits import wait_for_play

from flow8.domain import PlayLayer, PlayState, WaitReason
from flow8.services.plays import PlayService

sys.path.insert(0, str(Path(__file__).parent / "components"))
from components_kit import COMPANY, Kit, component_kit

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "flow-language.md"
KINDS = ("example", "input", "setup", "expect", "decisions")
DECISIONS = ("approve", "reject")
EXPECT_KEYS = {"state", "out", "error", "steps"}
STEP_KEYS = {"state", "args", "output", "error", "attempts"}
EXAMPLE_TIMEOUT = 60.0

# -- the guide --------------------------------------------------------------------------------


@attrs.define
class Example:
    name: str
    line: int
    flow: Any = None
    input: Any = None
    setup: dict[str, Any] = attrs.Factory(dict)
    decisions: list[str] = attrs.Factory(list)
    expect: Any = None


@attrs.define
class Guide:
    examples: dict[str, Example]
    problems: list[str]


_MARKER = re.compile(r"^<!--\s*([a-z]+):\s*([A-Za-z0-9_-]+)\s*(.*?)\s*-->\s*$")
_PLACEHOLDER = re.compile(r"<(server|credential|flow)(?::([A-Za-z0-9_-]+))?>")


def read_guide(text: str) -> Guide:
    """The guide's examples, and every way it breaks the convention."""
    examples: dict[str, Example] = {}
    problems: list[str] = []
    parts: list[tuple[str, str, int, Any]] = []  # (kind, name, line, value)
    pending: tuple[str, str, int] | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        number = i + 1
        marker = _MARKER.match(line)
        if marker is not None and marker.group(1) in KINDS:
            kind, name, rest = marker.groups()
            if pending is not None:
                problems.append(f"line {pending[2]}: {pending[0]} marker without a json block")
                pending = None
            if kind == "decisions":
                parts.append((kind, name, number, rest.split()))
            else:
                if rest:
                    problems.append(f"line {number}: unexpected text {rest!r} in the marker")
                pending = (kind, name, number)
        elif line.startswith("```json"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
            if end is None:
                problems.append(f"line {number}: a json block that never ends")
                break
            body = "\n".join(lines[i + 1 : end])
            if pending is None:
                problems.append(
                    f"line {number}: a json block that no marker claims (every one must be "
                    "an example, input, setup or expect)"
                )
            else:
                try:
                    parts.append((pending[0], pending[1], number, json.loads(body)))
                except ValueError as e:
                    problems.append(f"line {number}: not JSON: {e}")
                pending = None
            i = end
        elif line and pending is not None:
            problems.append(f"line {pending[2]}: {pending[0]} marker not followed by a json block")
            pending = None
        elif marker is not None:
            problems.append(f"line {number}: unknown marker {marker.group(1)!r}")
        i += 1
    if pending is not None:
        problems.append(f"line {pending[2]}: {pending[0]} marker without a json block")
    for kind, name, number, value in parts:
        if kind == "example":
            if name in examples:
                problems.append(f"line {number}: example {name!r} defined twice")
            examples[name] = Example(name, number, flow=value)
    for kind, name, number, value in parts:
        example = examples.get(name)
        if kind == "example":
            continue
        if example is None:
            problems.append(f"line {number}: {kind} for unknown example {name!r}")
        elif kind == "input":
            example.input = value
        elif kind == "setup":
            example.setup = value
        elif kind == "decisions":
            example.decisions = value
        else:
            example.expect = value
    for example in examples.values():
        problems += [f"example {example.name!r}: {p}" for p in _example_problems(example)]
    return Guide(examples, problems)


def _example_problems(example: Example) -> list[str]:
    problems: list[str] = []
    if not isinstance(example.flow, dict):
        problems.append("the flow is not a JSON object")
    expect = example.expect
    if expect is None:
        problems.append("no expect block")
    elif not isinstance(expect, dict) or "state" not in expect:
        problems.append('the expect block must be an object with at least "state"')
    else:
        problems += [f"unknown expect key {k!r}" for k in sorted(set(expect) - EXPECT_KEYS)]
        for ref, step in (expect.get("steps") or {}).items():
            if not isinstance(step, dict):
                problems.append(f"expected step {ref!r} is not an object")
            else:
                unknown = sorted(set(step) - STEP_KEYS)
                problems += [f"step {ref!r}: unknown key {k!r}" for k in unknown]
    unknown = sorted(set(example.setup) - {"components", "credentials"})
    problems += [f"unknown setup key {k!r}" for k in unknown]
    bad = [d for d in example.decisions if d not in DECISIONS]
    problems += [f"unknown decision {d!r} (approve or reject)" for d in bad]
    for kind, name in _placeholders([example.flow, example.input]):
        if kind == "server" and name is not None:
            problems.append("<server> takes no name")
        if kind in ("credential", "flow") and name is None:
            problems.append(f"<{kind}:NAME> needs a name")
        if kind == "credential" and name not in {
            c.get("name") for c in example.setup.get("credentials") or []
        }:
            problems.append(f"<credential:{name}>: no credential {name!r} in its setup")
    return problems


def _placeholders(value: Any) -> Iterator[tuple[str, str | None]]:
    if isinstance(value, str):
        for m in _PLACEHOLDER.finditer(value):
            yield m.group(1), m.group(2)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _placeholders(v)
    elif isinstance(value, list):
        for v in value:
            yield from _placeholders(v)


def _replaced(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: names[m.group(0)], value)
    if isinstance(value, dict):
        return {k: _replaced(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_replaced(v, names) for v in value]
    return value


def _dependencies(guide: Guide, name: str, seen: tuple[str, ...] = ()) -> list[str]:
    """The examples whose flows ``name`` names (``<flow:X>``), innermost first."""
    if name in seen:
        raise AssertionError(f"examples name each other's flows in a cycle: {(*seen, name)}")
    order: list[str] = []
    example = guide.examples[name]
    for kind, other in _placeholders([example.flow, example.input]):
        if kind != "flow" or other is None:
            continue
        assert other in guide.examples, f"example {name!r} names unknown flow <flow:{other}>"
        for dependency in [*_dependencies(guide, other, (*seen, name)), other]:
            if dependency not in order:
                order.append(dependency)
    return order


TEXT = GUIDE.read_text(encoding="utf-8") if GUIDE.exists() else ""
THE_GUIDE = read_guide(TEXT)


# -- the local HTTP server the curl examples call ---------------------------------------------


class Server(http.server.ThreadingHTTPServer):
    """``<server>``: ``/flaky/KEY?failures=N`` answers 503 to the first N requests for KEY
    and then 200 ``{"ok": true, "attempt": n}``; every other path answers 200 with the
    request it got: ``{"method", "path", "query", "authorization", "body"}`` (a JSON body
    decoded, any other as text)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def _answer(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path.startswith("/flaky/"):
            with self.server.lock:
                hit = self.server.hits[url.path] = self.server.hits.get(url.path, 0) + 1
            if hit <= int(query.get("failures", "1")):
                self._send(503, {"error": "busy, try again", "attempt": hit})
            else:
                self._send(200, {"ok": True, "attempt": hit})
            return
        body: Any = raw.decode("utf-8", "replace") if raw else None
        if raw and "json" in (self.headers.get("Content-Type") or ""):
            body = json.loads(raw)
        self._send(
            200,
            {
                "method": self.command,
                "path": url.path,
                "query": query,
                "authorization": self.headers.get("Authorization"),
                "body": body,
            },
        )

    def _send(self, status: int, answer: Any) -> None:
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    thread = threading.Thread(target=running.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.shutdown()
        running.server_close()
        thread.join()


# -- matching ---------------------------------------------------------------------------------


def mismatches(expected: Any, actual: Any, where: str) -> list[str]:
    """Where ``actual`` does not contain ``expected`` (see the module docstring)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {_shown(actual)}"]
        out: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{where}.{key}: missing (got {_shown(actual)})")
            else:
                out += mismatches(value, actual[key], f"{where}.{key}")
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected {_shown(expected)}, got {_shown(actual)}"]
        return [
            p for i, e in enumerate(expected) for p in mismatches(e, actual[i], f"{where}[{i}]")
        ]
    same_kind = isinstance(expected, bool) == isinstance(actual, bool)
    if expected != actual or not same_kind:
        return [f"{where}: expected {_shown(expected)}, got {_shown(actual)}"]
    return []


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 400 else text[:399] + "…"


def _contains(expected: Any, actual: Any, where: str) -> list[str]:
    if expected is None:
        return [] if actual is None else [f"{where}: expected none, got {actual!r}"]
    if actual is not None and str(expected) in actual:
        return []
    return [f"{where}: expected it to contain {expected!r}, got {actual!r}"]


def _layer_name(layer: PlayLayer) -> str:
    if not layer.iteration:
        return layer.ref
    return f"{layer.ref}[{','.join(str(i) for i in layer.iteration)}]"


# -- running one example ----------------------------------------------------------------------


async def _prepare(kit: Kit, example: Example, names: dict[str, str], done: list[Any]) -> None:
    """The example's components and credentials (each once, should two examples share one)."""
    for body in example.setup.get("components") or []:
        if body not in done:
            await kit.components.create(COMPANY, body)
            done.append(body)
    for body in example.setup.get("credentials") or []:
        if body not in done:
            made = await kit.credentials.create(COMPANY, body["name"], body["type"], body["data"])
            names[f"<credential:{body['name']}>"] = made.id
            done.append(body)


async def run_example(kit: Kit, name: str, server_url: str) -> tuple[Any, dict[str, PlayLayer]]:
    names = {"<server>": server_url}
    done: list[Any] = []
    for dependency in _dependencies(THE_GUIDE, name):
        other = THE_GUIDE.examples[dependency]
        await _prepare(kit, other, names, done)
        saved = await kit.flows.create(COMPANY, _replaced(other.flow, names))
        names[f"<flow:{dependency}>"] = saved.id
    example = THE_GUIDE.examples[name]
    await _prepare(kit, example, names, done)
    flow = await kit.flows.create(COMPANY, _replaced(example.flow, names))
    plays = PlayService(kit.engine)
    decisions = list(example.decisions)
    play = await plays.start(COMPANY, flow.id, _replaced(example.input, names))
    waiting = {PlayState.WAIT, PlayState.DONE, PlayState.FAIL, PlayState.CANCEL}
    while True:
        play = await wait_for_play(plays, COMPANY, play.id, waiting, timeout=EXAMPLE_TIMEOUT)
        if play.state.final:
            break
        if play.wait_reason is not WaitReason.APPROVAL:
            await trio.sleep(0.02)  # a parked delay or retry: the dispatcher wakes it
            continue
        assert decisions, (
            f"the play waits for an approval of step {play.wait_ref!r}, and the example "
            "has no decision left (add a <!-- decisions: ... --> marker)"
        )
        decide = plays.approve if decisions.pop(0) == "approve" else plays.reject
        await decide(COMPANY, play.id)
    assert not decisions, f"decisions left over: {decisions}"
    layers = {_layer_name(la): la for la in await kit.engine.get_layers(COMPANY, play.id)}
    return play, layers


def compare(expect: dict[str, Any], play: Any, layers: dict[str, PlayLayer]) -> list[str]:
    problems: list[str] = []
    if play.state.value != expect["state"]:
        problems.append(
            f"state: expected {expect['state']}, got {play.state.value} (error: {play.error})"
        )
    if "out" in expect:
        problems += mismatches(expect["out"], play.output, "out")
    if "error" in expect:
        problems += _contains(expect["error"], play.error, "error")
    for ref, step in (expect.get("steps") or {}).items():
        layer = layers.get(ref)
        if layer is None:
            problems.append(f"steps.{ref}: no such layer (there are {sorted(layers)})")
            continue
        where = f"steps.{ref}"
        if "state" in step and layer.state.value != step["state"]:
            problems.append(
                f"{where}.state: expected {step['state']}, got {layer.state.value} "
                f"(error: {layer.error})"
            )
        if "args" in step:
            problems += mismatches(step["args"], layer.args, f"{where}.args")
        if "output" in step:
            problems += mismatches(step["output"], layer.output, f"{where}.output")
        if "error" in step:
            problems += _contains(step["error"], layer.error, f"{where}.error")
        if "attempts" in step and len(layer.attempts) != step["attempts"]:
            problems.append(
                f"{where}.attempts: expected {step['attempts']}, got {len(layer.attempts)}"
            )
    return problems


# -- the tests --------------------------------------------------------------------------------


def test_the_guide_follows_the_example_convention() -> None:
    assert TEXT, f"{GUIDE} is missing"
    assert not THE_GUIDE.problems, "docs/flow-language.md:\n" + "\n".join(THE_GUIDE.problems)
    assert len(THE_GUIDE.examples) >= 20, "the guide lost examples"


@pytest.mark.parametrize("name", sorted(THE_GUIDE.examples))
async def test_the_example_runs_as_the_guide_says(
    name: str, tmp_path: Path, server: Server
) -> None:
    example = THE_GUIDE.examples[name]
    with trio.fail_after(EXAMPLE_TIMEOUT):
        async with component_kit(tmp_path) as kit:
            play, layers = await run_example(kit, name, server.url)
    problems = compare(example.expect, play, layers)
    assert not problems, (
        f"example {name!r} (docs/flow-language.md line {example.line}) did not give what its "
        "expect block says:\n"
        + "\n".join(problems)
        + "\nlayers: "
        + _shown({r: [la.state.value, la.output, la.error] for r, la in layers.items()})
    )


def test_the_guide_links_only_to_its_own_headings() -> None:
    """Links inside the page (``](#anchor)``) reach a heading, slugged as GitHub does."""
    slugs = set()
    for line in TEXT.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().replace("`", "").lower()
            slugs.add(re.sub(r"[^a-z0-9 _-]", "", title).replace(" ", "-"))
    broken = sorted(set(re.findall(r"\]\(#([^)]+)\)", TEXT)) - slugs)
    assert not broken, f"links to no heading of docs/flow-language.md: {broken}"


def test_the_matching_rules() -> None:
    assert mismatches({"a": 1}, {"a": 1, "b": 2}, "out") == []
    assert mismatches({"a": {"b": [1, {"c": 2}]}}, {"a": {"b": [1, {"c": 2, "d": 3}]}}, "x") == []
    assert mismatches([1, 2], [1, 2, 3], "out")  # arrays: the same length
    assert mismatches(True, 1, "out")  # true is not 1
    assert mismatches(1, 1.0, "out") == []
    assert mismatches({"a": None}, {}, "out") == ["out.a: missing (got {})"]


def test_the_convention_reports_what_it_cannot_run() -> None:
    broken = read_guide(
        "\n".join(
            [
                "```json",
                "{}",
                "```",
                "<!-- example: a -->",
                "some prose",
                "<!-- expect: nobody -->",
                "```json",
                '{"state": "DONE"}',
                "```",
                "<!-- example: b -->",
                "```json",
                '{"name": "b", "flowlets": []}',
                "```",
            ]
        )
    )
    assert len(broken.problems) == 4, broken.problems
    assert "no marker claims" in broken.problems[0]
    assert "not followed by a json block" in broken.problems[1]
    assert "unknown example 'nobody'" in broken.problems[2]
    assert "example 'b': no expect block" in broken.problems[3]
