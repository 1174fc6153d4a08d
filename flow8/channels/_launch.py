"""Starting a route's plays for a channel request, and reading how a play ended.

Shared by the three listeners: a route targets one or more flows, each gets a play started
with trigger ``channel`` and the channel's id as its source. Errors of a start become a
:class:`Refused` with the status and code the client sees (the http listener answers them as
they are; ws and tcp send them as ``{id, error}``).
"""

from __future__ import annotations

from typing import Any

import attrs

from flow8.domain import LayerState, Play, PlayState, TriggerKind
from flow8.logs import get_logger
from flow8.services.channels import Channel, Route
from flow8.services.exceptions import StoreError
from flow8.services.flows import FlowNotFound
from flow8.services.plays import (
    FlowDisabled,
    IdempotencyKeyReused,
    InvalidInput,
    PlayLimitReached,
    PlayService,
    StartTimedOut,
)

from ._stats import ChannelStats

log = get_logger("flow8.channels")
# The respond module's appId (flow8.modules is below the interface layer's reach).
RESPOND = "respond"
START_TIMEOUT = 10.0  # seconds a start may queue behind others before the client hears 503
FINISHED = frozenset({PlayState.DONE, PlayState.FAIL, PlayState.CANCEL})


class Refused(Exception):
    """A request the channel answers with an error (``status``, ``code``, ``message``)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message}


@attrs.frozen
class Launcher:
    channel: Channel
    plays: PlayService
    stats: ChannelStats

    async def start(
        self, route: Route, input: Any, *, idempotency_key: str | None = None
    ) -> list[Play]:
        """One play per target flow, in the route's order."""
        started = []
        for flow_id in route.target_flow_ids:
            started.append(await self.start_one(flow_id, input, idempotency_key))
        return started

    async def start_one(self, flow_id: str, input: Any, idempotency_key: str | None) -> Play:
        try:
            play = await self.plays.start(
                self.channel.company_id,
                flow_id,
                input,
                trigger=TriggerKind.CHANNEL,
                source=self.channel.id,
                idempotency_key=idempotency_key,
                timeout=START_TIMEOUT,
            )
        except InvalidInput as e:
            raise Refused(400, "INVALID_INPUT", str(e)) from e
        except IdempotencyKeyReused as e:
            raise Refused(409, "IDEMPOTENCY_KEY_REUSED", str(e)) from e
        except PlayLimitReached as e:
            raise Refused(429, "PLAY_LIMIT_REACHED", "too many plays started") from e
        except StartTimedOut as e:
            raise Refused(503, "BUSY", "the server is busy; retry") from e
        except FlowDisabled as e:
            raise Refused(409, "FLOW_DISABLED", "the route's flow is disabled") from e
        except FlowNotFound as e:
            log.warning("channel.target_missing", channel_id=self.channel.id, flow_id=flow_id)
            raise Refused(502, "TARGET_NOT_FOUND", "the route's flow does not exist") from e
        except StoreError as e:
            log.warning("channel.store_failed", channel_id=self.channel.id, error=repr(e)[:200])
            raise Refused(503, "UNAVAILABLE", "the server could not start the play") from e
        except Exception as e:  # a stored flow that no longer compiles, ...
            log.warning("channel.start_failed", channel_id=self.channel.id, error=repr(e)[:200])
            raise Refused(502, "START_FAILED", "the route's flow could not start") from e
        self.stats.plays_started += 1
        return play

    async def wait(self, play: Play, timeout: float) -> Play | None:
        """The play once finished, or None if it runs past ``timeout`` seconds."""
        if play.state in FINISHED:
            return play
        try:
            return await self.plays.wait(self.channel.company_id, play.id, timeout=timeout)
        except TimeoutError:
            return None

    async def get(self, play_id: str) -> Play:
        return await self.plays.get(self.channel.company_id, play_id)

    async def respond_step(self, play: Play) -> dict[str, Any] | None:
        """The answer a finished play's last step shaped with ``respond``, if it did.

        Only an output shaped like one is checked against the layers (one extra read), so
        plays that do not respond cost nothing here."""
        out = play.output
        if not (
            play.state is PlayState.DONE
            and isinstance(out, dict)
            and set(out) == {"statusCode", "headers", "body"}
            and isinstance(out["statusCode"], int)
        ):
            return None
        layers, total = await self.plays.layers(self.channel.company_id, play.id)
        if total > len(layers):
            layers, _ = await self.plays.layers(
                self.channel.company_id, play.id, page=(total - 1) // 100
            )
        done = [layer for layer in layers if layer.state is LayerState.DONE]
        if not done or done[-1].app_id != RESPOND:
            return None
        return out


def result_of(play: Play) -> dict[str, Any]:
    """A finished play as ``{playId, state, output}`` or ``{playId, state, error}``."""
    if play.state is PlayState.DONE:
        return {"playId": play.id, "state": play.state.value, "output": play.output}
    return {"playId": play.id, "state": play.state.value, "error": play.error or "failed"}
