"""The tools one caller sees and calls: the built-ins and one per route of the company's
enabled ``mcp`` channels, each checked against the caller's role in that company.

Results: a finished play answers its last step's output as ``structuredContent`` (an object
as it is; any other value as ``{"result": value}``) with its JSON as text beside it; a failed
play answers ``isError`` with the play's error; a play still running after ``waitSeconds`` (a
route: its ``timeoutSeconds``), or waiting for an approval, answers ``{playId, state}`` and
the agent polls ``get_play``. While a play runs, each finished step is reported as a progress
notification (when the client sent a ``progressToken``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import attrs
import mcp_types as types
import trio

from flow8.domain import Play, PlayState, TriggerKind, flow_definition_to_api
from flow8.logs import get_logger
from flow8.services.audit import AuditEntry, mask
from flow8.services.channels._models import Channel, ChannelKind, ResponseMode, Route
from flow8.services.events import Event, EventService
from flow8.services.flows import FlowService
from flow8.services.identity import Action, Principal
from flow8.services.modules import ModuleCatalog
from flow8.services.plays import PlayService

from ._auth import via_of

log = get_logger("flow8.mcp")

Recorder = Callable[[AuditEntry], None]
# Values shaped like JWTs are masked in audited arguments even under innocent names.
_JWT_VALUE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
DEFAULT_WAIT_SECONDS = 30.0
MAX_WAIT_SECONDS = 300.0
# How long an approval route waits for its play to park before answering.
PARK_SECONDS = 5.0


class McpRoutes(Protocol):
    """What the MCP server needs of the channels service: the routes of a company's enabled
    ``mcp`` channels (``ChannelService.mcp_routes``)."""

    async def mcp_routes(self, company_id: str) -> list[tuple[Channel, Route]]: ...


class ToolError(Exception):
    """A tool call the caller got wrong or may not make: answered as ``isError``."""


@attrs.frozen
class McpDeps:
    flows: FlowService
    plays: PlayService
    modules: ModuleCatalog
    events: EventService
    audit: Recorder
    channels: McpRoutes | None = None


Progress = Callable[[float, float | None, str | None], Awaitable[None]]
_Handler = Callable[["Call"], Awaitable[types.CallToolResult]]


@attrs.frozen
class Call:
    principal: Principal
    company_id: str
    tool: str
    arguments: Mapping[str, Any]
    progress: Progress
    route: Route | None = None
    play_ids: list[str] = attrs.field(factory=list)


@attrs.frozen
class _BuiltIn:
    action: Action
    description: str
    schema: Mapping[str, Any]


_ID = {"type": "string", "minLength": 1}
BUILT_INS: Mapping[str, _BuiltIn] = {
    "list_flows": _BuiltIn(
        Action.READ,
        "List the company's flows (newest change first): id, name, description, version.",
        {
            "type": "object",
            "properties": {
                "page": {"type": "integer", "minimum": 0, "default": 0},
                "size": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25},
            },
        },
    ),
    "get_flow": _BuiltIn(
        Action.READ,
        "A flow's definition (flowlets, inputSchema) by id.",
        {"type": "object", "properties": {"flowId": _ID}, "required": ["flowId"]},
    ),
    "run_flow": _BuiltIn(
        Action.PLAY_RUN,
        "Run a flow with an input and wait up to waitSeconds (default 30) for its result; a "
        "play still running then answers {playId, state}: poll get_play.",
        {
            "type": "object",
            "properties": {
                "flowId": _ID,
                "input": {"description": "the flow's input (see its inputSchema)"},
                "waitSeconds": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS},
            },
            "required": ["flowId"],
        },
    ),
    "get_play": _BuiltIn(
        Action.READ,
        "A play's state, output and error by id.",
        {"type": "object", "properties": {"playId": _ID}, "required": ["playId"]},
    ),
    "list_plays": _BuiltIn(
        Action.READ,
        "The company's latest plays (newest first), optionally of one flow or in one state.",
        {
            "type": "object",
            "properties": {
                "flowId": _ID,
                "state": {"type": "string", "enum": [s.value for s in PlayState]},
            },
        },
    ),
    "list_modules": _BuiltIn(
        Action.READ,
        "The modules (appId) a flow's steps may use, with their argument schemas.",
        {"type": "object", "properties": {}},
    ),
    "approve_play": _BuiltIn(
        Action.PLAY_APPROVE,
        "Approve the step a play waits on (state WAIT); the play then runs on.",
        {"type": "object", "properties": {"playId": _ID}, "required": ["playId"]},
    ),
    "reject_play": _BuiltIn(
        Action.PLAY_APPROVE,
        "Reject the step a play waits on; the play fails.",
        {"type": "object", "properties": {"playId": _ID}, "required": ["playId"]},
    ),
}


@attrs.frozen
class Toolbox:
    """Lists and calls the tools of one caller (its company and role)."""

    deps: McpDeps

    async def list_tools(self, principal: Principal) -> list[types.Tool]:
        tools = [
            types.Tool(name=name, description=b.description, input_schema=dict(b.schema))
            for name, b in BUILT_INS.items()
            if principal.may(b.action)
        ]
        if principal.may(Action.PLAY_RUN):
            for name, route in (await self._routes(_company(principal))).items():
                tools.append(
                    types.Tool(
                        name=name,
                        description=route.description or f"Runs the {route.name} route",
                        input_schema=await self._route_schema(_company(principal), route),
                    )
                )
        return tools

    async def call(
        self,
        principal: Principal,
        tool: str,
        arguments: Mapping[str, Any] | None,
        progress: Progress,
    ) -> types.CallToolResult:
        """Call ``tool`` for ``principal``; audited whatever the outcome."""
        company = _company(principal)
        call = Call(principal, company, tool, arguments or {}, progress)
        outcome = "error"
        try:
            result = await self._dispatch(call)
            outcome = "error" if result.is_error else "ok"
            return result
        except ToolError as e:
            outcome = "refused" if isinstance(e, Refused) else "error"
            return _error(str(e))
        finally:
            self._audit(call, outcome)

    async def _dispatch(self, call: Call) -> types.CallToolResult:
        built_in = BUILT_INS.get(call.tool)
        if built_in is not None:
            if not call.principal.may(built_in.action):
                # Told as "unknown": a caller does not learn what lies beyond its role.
                raise Refused(f"unknown tool {call.tool!r}")
            handler: _Handler = getattr(self, f"_t_{call.tool}")
            return await handler(call)
        route = (await self._routes(call.company_id)).get(call.tool)
        if route is None or not call.principal.may(Action.PLAY_RUN):
            raise Refused(f"unknown tool {call.tool!r}")
        return await self._run_route(attrs.evolve(call, route=route))

    # -- channel routes -----------------------------------------------------------------

    async def _routes(self, company_id: str) -> dict[str, Route]:
        if self.deps.channels is None:
            return {}
        found: dict[str, Route] = {}
        for channel, route in await self.deps.channels.mcp_routes(company_id):
            if channel.company_id != company_id or not channel.enabled:
                continue
            if channel.kind is not ChannelKind.MCP or not route.target_flow_ids:
                continue
            name = route.tool_name or route.name
            if name in BUILT_INS or name in found:
                log.warning("mcp_tool_name_taken", tool=name, channel_id=channel.id)
                continue
            found[name] = route
        return found

    async def _route_schema(self, company_id: str, route: Route) -> dict[str, Any]:
        try:
            flow = await self.deps.flows.get(company_id, route.target_flow_ids[0])
        except Exception:  # a target deleted since: the tool stays, calling it says why
            return {"type": "object"}
        schema = flow.definition.input_schema
        if isinstance(schema, Mapping) and schema.get("type") == "object":
            return dict(schema)
        return {"type": "object"}

    async def _run_route(self, call: Call) -> types.CallToolResult:
        route = call.route
        assert route is not None
        wait = _seconds(route.timeout_seconds, DEFAULT_WAIT_SECONDS)
        if route.response_mode is ResponseMode.ASYNC:
            wait = 0.0  # answered at once with {playId, state}
        if len(route.target_flow_ids) == 1:
            return await self._start_and_wait(
                call,
                route.target_flow_ids[0],
                dict(call.arguments),
                wait,
                approve_first=route.require_approval,
            )
        results: list[dict[str, Any]] = []
        any_error = False
        for flow_id in route.target_flow_ids:
            one = await self._start_and_wait(
                call, flow_id, dict(call.arguments), wait, approve_first=route.require_approval
            )
            any_error = any_error or one.is_error
            results.append({"flowId": flow_id, **(one.structured_content or {})})
        return _answer({"results": results}, is_error=any_error)

    # -- plays ----------------------------------------------------------------------------

    async def _start_and_wait(
        self,
        call: Call,
        flow_id: str,
        input: Any,
        wait: float,
        *,
        approve_first: bool = False,
    ) -> types.CallToolResult:
        plays = self.deps.plays
        total = await self._step_count(call.company_id, flow_id)
        # Subscribed before the start: no finished step is missed.
        async with self.deps.events.subscribe(call.company_id, flow_id=flow_id) as events:
            try:
                play = await plays.start(
                    call.company_id,
                    flow_id,
                    input,
                    trigger=TriggerKind.MCP,
                    source=call.tool,
                    approve_first=approve_first,
                )
            except Exception as e:
                raise ToolError(_reason(e)) from e
            call.play_ids.append(play.id)
            if approve_first:
                play = await self._parked(call.company_id, play, events)
                return _still_running(play)
            play = await self._follow(call, play, wait, total, events)
        return play_result(play)

    async def _step_count(self, company_id: str, flow_id: str) -> float | None:
        try:
            flow = await self.deps.flows.get(company_id, flow_id)
        except Exception:
            return None  # the start says why
        return float(len(flow.definition.flowlets)) or None

    async def _parked(
        self, company_id: str, play: Play, events: trio.MemoryReceiveChannel[Event]
    ) -> Play:
        """The play once it waits for its approval (or ended), or as it is after a while."""
        with trio.move_on_after(PARK_SECONDS):
            while True:
                play = await self.deps.plays.get(company_id, play.id)
                if play.state is PlayState.WAIT or play.state.final:
                    return play
                with trio.move_on_after(0.5):
                    async for event in events:
                        if event.play_id == play.id and event.type in _PARKED_OR_DONE:
                            break
        return play

    async def _follow(
        self,
        call: Call,
        play: Play,
        wait: float,
        total: float | None,
        events: trio.MemoryReceiveChannel[Event],
    ) -> Play:
        """Wait up to ``wait`` seconds for the play's end, reporting each finished step; a
        play that parks (an approval inside the flow) is answered at once."""
        done = 0.0
        company = call.company_id
        with trio.move_on_after(wait):
            async with trio.open_nursery() as nursery:

                async def until_final() -> None:
                    nonlocal play
                    play = await self.deps.plays.wait(company, play.id)
                    nursery.cancel_scope.cancel()

                nursery.start_soon(until_final)
                async for event in events:
                    if event.play_id != play.id:
                        continue
                    if event.type == "play:layer:completed":
                        done += 1
                        ref = event.data.get("ref")
                        await call.progress(done, total, f"step {ref} done" if ref else None)
                    elif event.type == "play:waiting":
                        nursery.cancel_scope.cancel()
        return await self.deps.plays.get(company, play.id)

    # -- built-ins ------------------------------------------------------------------------

    async def _t_list_flows(self, call: Call) -> types.CallToolResult:
        page = _int(call.arguments, "page", 0, 0, 1_000_000)
        size = _int(call.arguments, "size", 25, 1, 100)
        flows, total = await self.deps.flows.list(call.company_id, page=page, size=size)
        items = [
            {
                "id": f.id,
                "name": f.definition.name,
                "description": f.definition.description,
                "version": f.version,
                "inputSchema": f.definition.input_schema,
            }
            for f in flows
        ]
        return _answer({"flows": items, "total": total, "page": page, "size": size})

    async def _t_get_flow(self, call: Call) -> types.CallToolResult:
        flow_id = _text(call.arguments, "flowId")
        try:
            flow = await self.deps.flows.get(call.company_id, flow_id)
        except Exception as e:
            raise ToolError(_reason(e)) from e
        body = {"id": flow.id, "version": flow.version, **flow_definition_to_api(flow.definition)}
        return _answer(body)

    async def _t_run_flow(self, call: Call) -> types.CallToolResult:
        flow_id = _text(call.arguments, "flowId")
        wait = _seconds(call.arguments.get("waitSeconds"), DEFAULT_WAIT_SECONDS)
        return await self._start_and_wait(call, flow_id, call.arguments.get("input"), wait)

    async def _t_get_play(self, call: Call) -> types.CallToolResult:
        play = await self._play(call, _text(call.arguments, "playId"))
        return _answer(play_summary(play))

    async def _t_list_plays(self, call: Call) -> types.CallToolResult:
        flow_id = call.arguments.get("flowId")
        state_name = call.arguments.get("state")
        try:
            state = PlayState(state_name) if state_name is not None else None
        except ValueError as e:
            raise ToolError(f"state: must be one of {[s.value for s in PlayState]}") from e
        plays, total = await self.deps.plays.list(
            call.company_id,
            flow_id=flow_id if isinstance(flow_id, str) else None,
            state=state,
        )
        return _answer({"plays": [play_summary(p) for p in plays], "total": total})

    async def _t_list_modules(self, call: Call) -> types.CallToolResult:
        return _answer({"modules": self.deps.modules.list()})

    async def _t_approve_play(self, call: Call) -> types.CallToolResult:
        return await self._decide(call, approve=True)

    async def _t_reject_play(self, call: Call) -> types.CallToolResult:
        return await self._decide(call, approve=False)

    async def _decide(self, call: Call, *, approve: bool) -> types.CallToolResult:
        play_id = _text(call.arguments, "playId")
        call.play_ids.append(play_id)
        by = call.principal.user.email
        try:
            if approve:
                play = await self.deps.plays.approve(call.company_id, play_id, by=by)
            else:
                play = await self.deps.plays.reject(call.company_id, play_id, by=by)
        except Exception as e:
            raise ToolError(_reason(e)) from e
        return _answer(play_summary(play))

    async def _play(self, call: Call, play_id: str) -> Play:
        call.play_ids.append(play_id)
        try:
            return await self.deps.plays.get(call.company_id, play_id)
        except Exception as e:
            raise ToolError(_reason(e)) from e

    # -- audit --------------------------------------------------------------------------

    def _audit(self, call: Call, outcome: str) -> None:
        p = call.principal
        details = {
            "keyId": p.api_key_id,
            "via": via_of(p),
            "tool": call.tool,
            "arguments": _masked(call.arguments),
            "playId": call.play_ids[0] if len(call.play_ids) == 1 else None,
            "outcome": outcome,
        }
        if len(call.play_ids) > 1:
            details["playIds"] = list(call.play_ids)
        self.deps.audit(
            AuditEntry(
                "mcp_tool_call",
                company_id=call.company_id,
                user_id=p.user.id,
                user_email=p.user.email,
                target_type="play" if call.play_ids else None,
                target_id=call.play_ids[0] if call.play_ids else None,
                details=details,
            )
        )


class Refused(ToolError):
    """A tool the caller's role may not call (or that does not exist for it)."""


_PARKED_OR_DONE = frozenset({"play:waiting", "play:completed", "play:failed"})


def play_summary(play: Play) -> dict[str, Any]:
    return {
        "playId": play.id,
        "flowId": play.flow_id,
        "flowVersion": play.flow_version,
        "state": play.state.value,
        "output": play.output,
        "error": play.error,
        "waitReason": play.wait_reason.value if play.wait_reason else None,
        "trigger": play.trigger.kind.value,
        "createdAt": play.created_at,
        "finishedAt": play.finished_at,
    }


def play_result(play: Play) -> types.CallToolResult:
    """A play's answer to a tool call: its output, its error, or where it stands."""
    if play.state is PlayState.DONE:
        output = play.output
        return _answer(output if isinstance(output, dict) else {"result": output})
    if play.state.final:
        error = play.error or play.state.value.lower()
        return types.CallToolResult(
            content=[types.TextContent(text=error)],
            structured_content={"playId": play.id, "state": play.state.value, "error": error},
            is_error=True,
        )
    return _still_running(play)


def _still_running(play: Play) -> types.CallToolResult:
    if play.state.final:
        return play_result(play)
    return _answer({"playId": play.id, "state": play.state.value})


def _answer(body: dict[str, Any], *, is_error: bool = False) -> types.CallToolResult:
    text = json.dumps(body, default=str, ensure_ascii=False)
    return types.CallToolResult(
        content=[types.TextContent(text=text)],
        structured_content=json.loads(text),
        is_error=is_error,
    )


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True)


def _company(principal: Principal) -> str:
    assert principal.company_id is not None  # the server lets in only company principals
    return principal.company_id


def _masked(arguments: Mapping[str, Any]) -> Any:
    masked = mask(dict(arguments))
    text = json.dumps(masked, default=str)
    if "eyJ" not in text:
        return masked
    return json.loads(_JWT_VALUE.sub("***", text))


def _reason(error: Exception) -> str:
    """What the caller is told of a service error: its own message (the services' errors
    say what was wrong without internals); anything else is logged and summarized."""
    module = type(error).__module__
    if module.startswith(("flow8.engine", "flow8.services", "flow8.domain")):
        return str(error) or type(error).__name__
    log.exception("mcp_tool_failed", error_type=type(error).__name__)
    return "internal error"


def _text(arguments: Mapping[str, Any], name: str) -> str:
    value = arguments.get(name)
    if not isinstance(value, str) or not value:
        raise ToolError(f"{name}: a non-empty string is required")
    return value


def _int(arguments: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = arguments.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ToolError(f"{name}: an integer is required")
    return max(low, min(int(value), high))


def _seconds(value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ToolError("waitSeconds: a number of seconds is required")
    return max(0.0, min(float(value), MAX_WAIT_SECONDS))
