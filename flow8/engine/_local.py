"""What this instance knows of plays in memory only: the plays it runs (and their cancel
scopes), those it lost to another instance, those it finished lately, and how to wake its
dispatcher. The store knows the rest (see :class:`PlayLedger`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from flow8.domain import Play

from ._admission import Admission
from .exceptions import PlayStateError

# How plays are started as tasks: under the plays supervisor (see Engine.attach), or in the
# dispatcher's nursery. Takes the play's id and the task's body.
Spawn = Callable[[str, Callable[[trio.TaskStatus[Any]], Awaitable[None]]], Awaitable[None]]
FINISHED_KEPT = 4096  # finished plays remembered for their waiters


@attrs.define
class LocalPlays:
    """The plays held in this process; Trio-only, one per engine."""

    # Left out of the repr (a traceback rendered with its locals walks attrs fields): up to
    # thousands of plays each.
    admission: Admission = attrs.field(repr=False)  # counts each company's running plays
    _spawn: Spawn | None = attrs.field(default=None, repr=False)
    _running: dict[str, trio.CancelScope] = attrs.field(factory=dict, repr=False)
    _company_of: dict[str, str] = attrs.field(factory=dict, repr=False)  # play -> company
    _lost: set[str] = attrs.field(factory=set, repr=False)
    # Plays this instance finished lately: answers waiters without a read.
    _finished: dict[str, Play] = attrs.field(factory=dict, repr=False)
    _wake: trio.Event = attrs.field(factory=trio.Event, repr=False)

    # -- spawning -------------------------------------------------------------------------

    @property
    def runs_plays(self) -> bool:
        """Whether plays can be started here (a plays supervisor or a dispatcher is up)."""
        return self._spawn is not None

    def attach(self, spawn: Spawn, *, replace: bool = True) -> None:
        """Start plays with ``spawn`` (without ``replace``: unless they already have one)."""
        if replace or self._spawn is None:
            self._spawn = spawn

    async def launch(
        self,
        company_id: str,
        play_id: str,
        body: Callable[[trio.TaskStatus[Any]], Awaitable[None]],
    ) -> None:
        """Start ``body`` as the play's task, held (counted as running) from now on: waiters
        need not read the store, and the caps on running plays include plays starting."""
        if self._spawn is None:
            raise PlayStateError("the engine is not running plays (no dispatcher)")
        self.hold(play_id, company_id)
        try:
            await self._spawn(play_id, body)
        except BaseException:
            self.release(play_id)
            raise

    # -- running plays --------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._running)

    def __contains__(self, play_id: object) -> bool:
        return play_id in self._running

    def ids(self) -> list[str]:
        return list(self._running)

    def hold(self, play_id: str, company_id: str) -> trio.CancelScope:
        """The play's cancel scope; the first hold counts it running for its company."""
        scope = self._running.get(play_id)
        if scope is None:
            scope = self._running[play_id] = trio.CancelScope()
            self._company_of[play_id] = company_id
            self.admission.started(company_id)
        return scope

    def release(self, play_id: str) -> None:
        if self._running.pop(play_id, None) is not None:
            self.admission.ended(self._company_of.pop(play_id))

    def cancel(self, play_id: str) -> bool:
        """Cancel the play if it runs here."""
        scope = self._running.get(play_id)
        if scope is None:
            return False
        scope.cancel()
        return True

    def lose(self, play_id: str) -> None:
        """Another instance took the play: stop it here, silently (see :meth:`was_lost`)."""
        scope = self._running.get(play_id)
        if scope is not None:
            self._lost.add(play_id)
            scope.cancel()

    def was_lost(self, play_id: str) -> bool:
        """Whether the play was stopped because it was lost (said once)."""
        if play_id not in self._lost:
            return False
        self._lost.discard(play_id)
        return True

    # -- finished plays -------------------------------------------------------------------

    def remember_finished(self, play: Play) -> None:
        """Keep a play this instance ended, so waiters are answered without a read."""
        self._finished[play.id] = play
        while len(self._finished) > FINISHED_KEPT:
            del self._finished[next(iter(self._finished))]

    def finished(self, play_id: str) -> Play | None:
        return self._finished.get(play_id)

    # -- the dispatcher's wake-up ---------------------------------------------------------

    def wake(self) -> None:
        """There may be a play to claim: the dispatcher looks now rather than at its poll."""
        self._wake.set()

    async def nap(self, seconds: float) -> None:
        """Wait ``seconds`` or until :meth:`wake` (a wake-up before the nap is forgotten)."""
        self._wake = trio.Event()
        with trio.move_on_after(seconds):
            await self._wake.wait()
