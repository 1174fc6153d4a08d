"""Waiting in tests for what a test is about, not for a sleep to be long enough.

Both helpers poll: on virtual time (``support.virtual_time``) a poll costs no real time, and on
the wall clock a short interval keeps the wait close to the moment the condition holds.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, TypeVar

import trio

from flow8.domain import Play, PlayState

T = TypeVar("T")


async def wait_until(
    check: Callable[[], Awaitable[T] | T],
    *,
    timeout: float = 10.0,
    interval: float = 0.01,
    what: str = "the condition",
) -> T:
    """Call ``check()`` (awaiting its answer if it is async) until it answers something
    truthy, and return that; an AssertionError naming ``what`` after ``timeout`` seconds."""
    try:
        with trio.fail_after(timeout):
            while True:  # a poll: what is waited for is stored state, which signals nothing
                found = check()
                if inspect.isawaitable(found):
                    found = await found
                if found:
                    return found  # type: ignore[return-value]
                await trio.sleep(interval)
    except trio.TooSlowError:
        raise AssertionError(f"{what} did not happen within {timeout:g} s") from None


class _EngineReads(Protocol):
    async def get_play(self, company_id: str, play_id: str) -> Play: ...


class _ServiceReads(Protocol):
    async def get(self, company_id: str, play_id: str) -> Play: ...


async def wait_for_play(
    plays: _EngineReads | _ServiceReads | Any,
    company: str,
    play_id: str,
    states: PlayState | Iterable[PlayState],
    *,
    timeout: float = 10.0,
) -> Play:
    """The play once it is in one of ``states``, as ``plays`` reads it: an ``Engine``
    (``get_play``) or a ``PlayService`` (``get``)."""
    wanted = {states} if isinstance(states, PlayState) else set(states)
    read = getattr(plays, "get_play", None) or plays.get
    seen: list[PlayState] = []

    async def reached() -> Play | None:
        play: Play = await read(company, play_id)
        seen[:] = [play.state]
        return play if play.state in wanted else None

    try:
        return await wait_until(reached, timeout=timeout)
    except AssertionError:
        names = "/".join(sorted(s.value for s in wanted))
        last = seen[0].value if seen else "unread"
        raise AssertionError(
            f"play {play_id} did not reach {names} within {timeout:g} s (last seen {last})"
        ) from None
