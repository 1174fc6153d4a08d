"""Play and layer events of plays that run in another process sharing the store.

The event bus (:mod:`flow8.events`) is in-process: a play publishes on the bus of the process
that runs it. With ``flow8 serve --workers N``, or several instances on one MongoDB, a
``/ws`` subscriber whose connection landed on another process would hear nothing. The
watches below rebuild those events from what the engine already writes (the ``plays`` and
``play_layers`` documents), reading the store at each :meth:`poll` (the caller's pace,
``POLL_SECONDS``): no broker, and nothing more written on the play's path.

Both are fed the local bus's events too (:meth:`note`): each event has a key (:func:`event_key`:
a layer's id and state, and the attempt for a start; a play's start, its wait (step, iteration,
wake time), its end), and an event the store reported is never reported again by the bus, nor
the reverse. (The bus is not filtered against itself: it reports each change once.) A play
running in this process is not read at all: the bus delivers it (``PlayService.runs_here``);
one that moves here, or away, between two looks is covered by the keys.

* :class:`PlayWatch` (one play): every event the bus would carry but ``play:log`` (console
  lines are not stored as such). A step's start is seen only where the store records it: a
  non-idempotent step's running state is written (its ``play:layer:started`` arrives), an
  idempotent one's is not (only its end arrives). Layers are read by their ``seq`` (indexed):
  those past the highest seen, and those seen unfinished or missing below it; once the play
  has ended, a count finds any layer never read (then read once).
* :class:`PlaysWatch` (a flow's plays, or the company's): play events only (``play:started``,
  ``play:waiting``, ``play:completed``, ``play:failed``), not layer events: plays created
  since the last look (by ``created_at``, indexed, ``PAGE`` at most per look, newest first)
  and the unfinished plays it follows (by id, ``MAX_TRACKED`` at most). Under a faster start
  rate some plays of other processes are missed; ``created_at`` comes from the clock of the
  host that created the play, so hosts whose clocks differ by more than ``SLACK_SECONDS``
  miss each other's plays.

Events already past at the first look (:meth:`PlayService.watch`) are not replayed, as a bus
subscription does not replay them either.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import attrs

from flow8.domain import LayerState, Play, PlayState, layer_key
from flow8.engine import PlayNotFound
from flow8.events import (
    LAYER_COMPLETED,
    LAYER_FAILED,
    LAYER_STARTED,
    PLAY_COMPLETED,
    PLAY_FAILED,
    PLAY_STARTED,
    PLAY_WAITING,
    Event,
)
from flow8.store import Collection, Document

__all__ = ["POLL_SECONDS", "EventWatch", "PlayWatch", "PlaysWatch", "event_key"]

POLL_SECONDS = 0.5  # how often a subscription reads the store for another process's plays
PAGE = 500  # layers (or plays) read by one query
MAX_HOLES = 256  # seqs below the highest seen, with no layer yet, rechecked at each look
MAX_TRACKED = 200  # unfinished plays a flow or company watch follows
MAX_KEYS = 8192  # event keys a flow or company watch remembers
SLACK_SECONDS = 10.0  # how late a play's insert may land after its created_at

Key = tuple[Any, ...]
Here = Callable[[str], bool]  # whether the play runs in this process

_LAYER_FIELDS = dict.fromkeys(
    [
        "play_id",
        "ref",
        "state",
        "iteration",
        "app_id",
        "error",
        "attempts",
        "started_at",
        "finished_at",
        "seq",
    ],
    1,
)
_PLAY_FIELDS = dict.fromkeys(
    [
        "flow_id",
        "flow_version",
        "status",
        "trigger",
        "created_at",
        "started_at",
        "finished_at",
        "wait_reason",
        "wait_ref",
        "wake_at",
    ],
    1,
)
_LAYER_EVENT = {
    LayerState.RUN.value: LAYER_STARTED,
    LayerState.DONE.value: LAYER_COMPLETED,
    LayerState.FILTERED.value: LAYER_COMPLETED,
    LayerState.FAIL.value: LAYER_FAILED,
}
_UNFINISHED = (LayerState.RUN.value, LayerState.WAIT.value)
_ACTIVE = [s.value for s in PlayState if not s.final]


def event_key(event: Event) -> Key | None:
    """What makes an event the same as another (None: not deduplicated, e.g. ``play:log``)."""
    t, d = event.type, event.data
    if t in (LAYER_STARTED, LAYER_COMPLETED, LAYER_FAILED):
        layer = layer_key(event.play_id or "", str(d.get("ref")), tuple(d.get("iteration") or ()))
        if t == LAYER_STARTED:
            return (layer, LayerState.RUN.value, d.get("attempt"))
        return (layer, d.get("state"))
    if t == PLAY_STARTED:
        return (event.play_id, "started")
    if t == PLAY_WAITING:
        return (
            event.play_id,
            "waiting",
            d.get("ref"),
            tuple(d.get("iteration") or ()),
            d.get("wakeAt"),
        )
    if t in (PLAY_COMPLETED, PLAY_FAILED):
        return (event.play_id, "ended")
    return None


@attrs.define
class _Keys:
    """The keys of the events a subscription was sent, and whether the store's (True) or the
    bus's (False) came first; the oldest are forgotten past ``limit`` (0: none)."""

    limit: int = 0
    _sent: dict[Key, bool] = attrs.field(factory=dict)

    def __contains__(self, key: Key) -> bool:
        return key in self._sent

    def from_bus(self, key: Key) -> bool:
        """Whether a bus event is new: only what the store reported first is dropped. (The
        bus is not filtered against itself: it reports each change once.)"""
        if self._sent.get(key):
            return False
        self._add(key, False)
        return True

    def from_store(self, key: Key) -> bool:
        """Whether the store's event is new (neither source reported it yet)."""
        if key in self._sent:
            return False
        self._add(key, True)
        return True

    def _add(self, key: Key, store: bool) -> None:
        self._sent.setdefault(key, store)
        if self.limit:
            while len(self._sent) > self.limit:
                del self._sent[next(iter(self._sent))]


class EventWatch(Protocol):
    """What ``/ws`` runs beside a bus subscription (see the module's docstring)."""

    @property
    def done(self) -> bool:
        """Nothing more will come from the store (the play has ended, and was reported)."""
        ...

    def note(self, event: Event) -> bool:
        """A bus event: whether to deliver it (False: it was delivered already)."""
        ...

    async def poll(self) -> list[Event]:
        """What changed in the store since the last look, not delivered yet, in order."""
        ...


def _play_started(company_id: str, doc: Mapping[str, Any]) -> Event:
    data = {"flowVersion": doc.get("flow_version"), "trigger": _trigger(doc)}
    return Event(
        PLAY_STARTED, company_id, doc.get("flow_id"), doc["_id"], data, at=doc["started_at"]
    )


def _play_waiting(company_id: str, doc: Mapping[str, Any], iteration: list[int]) -> Event:
    data = {
        "ref": doc.get("wait_ref"),
        "iteration": iteration,
        "reason": doc.get("wait_reason"),
        "wakeAt": doc.get("wake_at"),
    }
    return Event(PLAY_WAITING, company_id, doc.get("flow_id"), doc["_id"], data)


def _play_ended(play: Play) -> Event:
    data = {
        "state": play.state.value,
        "output": play.output,
        "error": play.error,
        "trigger": play.trigger.kind.value,
    }
    kind = PLAY_COMPLETED if play.state is PlayState.DONE else PLAY_FAILED
    at = play.finished_at if play.finished_at is not None else time.time()
    return Event(kind, play.company_id, play.flow_id, play.id, data, at=at)


def _trigger(doc: Mapping[str, Any]) -> Any:
    trigger = doc.get("trigger")
    return trigger.get("kind") if isinstance(trigger, Mapping) else None


def _layer_at(doc: Mapping[str, Any]) -> float:
    """When the layer reached the state it is in (its event's time)."""
    if doc.get("state") == LayerState.RUN.value:
        attempts = doc.get("attempts") or []
        started = attempts[-1].get("started_at") if attempts else None
        return float(started or doc.get("started_at") or 0.0)
    return float(doc.get("finished_at") or doc.get("started_at") or 0.0)


@attrs.define(eq=False)
class PlayWatch:
    """One play's events, read back from the store (see the module's docstring). Made by
    ``PlayService.watch``, which takes the first look (nothing of it is reported)."""

    company_id: str
    play_id: str
    flow_id: str
    _plays: Collection = attrs.field(repr=False)
    _layers: Collection = attrs.field(repr=False)
    _here: Here = attrs.field(repr=False)
    _ended: Callable[[], Awaitable[Play]] = attrs.field(repr=False)  # the play as shown
    done: bool = False
    _sent: _Keys = attrs.field(factory=_Keys, repr=False)
    _states: dict[str, str] = attrs.field(factory=dict, repr=False)  # layer id -> state
    _pending: dict[str, int] = attrs.field(factory=dict, repr=False)  # unfinished: id -> seq
    _holes: set[int] = attrs.field(factory=set, repr=False)  # seqs below _top with no layer
    _again: set[int] = attrs.field(factory=set, repr=False)  # seqs to read once more
    _waits: dict[str, list[int]] = attrs.field(factory=dict, repr=False)  # ref -> iteration
    _top: int = 0  # the highest seq read

    async def first_look(self) -> None:
        """Take the play as it is now for known: only what changes after is reported."""
        doc = await self._play_doc()
        if doc is None or PlayState(doc["status"]).final:
            self.done = True
            return
        self._play_events(doc, [])
        more = True
        while more:  # every layer so far (a page per read), then the play's wait if any
            layers, more = await self._changed_layers()
            for layer in layers:
                self._layer(layer, [])
        await self._look(doc, [])

    def note(self, event: Event) -> bool:
        key = event_key(event)
        if key is None:
            return True
        if event.type in (PLAY_COMPLETED, PLAY_FAILED):
            self.done = True  # the bus reported the end: nothing is left to read
        return self._sent.from_bus(key)

    async def poll(self) -> list[Event]:
        if self.done or self._here(self.play_id):
            return []  # the bus delivers the events of a play running here
        doc = await self._play_doc()
        if doc is None:  # deleted (retention): nothing more will come
            self.done = True
            return []
        out: list[Event] = []
        self._play_events(doc, out)
        await self._look(doc, out)
        return out

    async def _play_doc(self) -> Document | None:
        return await self._plays.find_one({"_id": self.play_id}, projection=_PLAY_FIELDS)

    def _play_events(self, doc: Document, out: list[Event]) -> None:
        if doc.get("started_at") is not None:
            self._emit(_play_started(self.company_id, doc), out)

    async def _look(self, doc: Document, out: list[Event]) -> None:
        """The layers changed since the last look, then the play's wait or end. The play's
        document was read first: a play that had ended by then had written all its layers."""
        state = PlayState(doc["status"])
        layers, _ = await self._changed_layers()  # past a full page: the next look
        if state.final:
            layers.extend(await self._never_read(layers))
        for layer in sorted(layers, key=lambda d: (_layer_at(d), d.get("seq") or 0)):
            self._layer(layer, out)
        if state is PlayState.WAIT:
            iteration = self._waits.get(str(doc.get("wait_ref")), [])
            self._emit(_play_waiting(self.company_id, doc, iteration), out)
        elif state.final:
            self.done = True
            with contextlib.suppress(PlayNotFound):  # deleted since (retention)
                self._emit(_play_ended(await self._ended()), out)

    async def _changed_layers(self) -> tuple[list[Document], bool]:
        """Layers past the highest seq read (a page), and those read unfinished or missing
        below it (a step that records only its end, running beside later ones, or a seq
        shared); and whether more may be past the page."""
        found: dict[str, Document] = {}
        recheck = sorted({*self._pending.values(), *self._holes, *self._again})
        self._again.clear()
        # The new layers first, then the known ones again: the two reads are not one
        # snapshot, and the engine ends a step before it writes the next, so a later step
        # seen here is never seen before the end of the step it followed (the other way
        # round, a look could report a step's successor before the step itself).
        fresh = await self._find({"seq": {"$gt": self._top}}, limit=PAGE)
        for start in range(0, len(recheck), PAGE):
            seqs = recheck[start : start + PAGE]
            for d in await self._find({"seq": {"$in": seqs}}):
                found[d["_id"]] = d
        more = len(fresh) == PAGE
        if fresh:
            top = int(fresh[-1]["seq"])
            if more:
                self._again.add(top)  # more layers of that seq may be past the page
            seen = {d["seq"] for d in fresh}
            below = range(max(self._top + 1, top - MAX_HOLES), top)
            self._holes.update(s for s in below if s not in seen)
            self._top = top
            for d in fresh:
                found.setdefault(d["_id"], d)  # a layer read again since is newer
        for d in found.values():
            self._holes.discard(d["seq"])
        if len(self._holes) > MAX_HOLES:  # the oldest are gaps for good (a resumed step's)
            self._holes = set(sorted(self._holes)[-MAX_HOLES:])
        return list(found.values()), more

    async def _never_read(self, read: list[Document]) -> list[Document]:
        """Once the play has ended: the layers no look found (a count, then one read)."""
        known = set(self._states) | {d["_id"] for d in read}
        if await self._layers.count({"play_id": self.play_id}) <= len(known):
            return []
        return [d for d in await self._find({}) if d["_id"] not in known]

    async def _find(self, flt: dict[str, Any], *, limit: int = 0) -> list[Document]:
        return await self._layers.find(
            {"play_id": self.play_id, **flt},
            sort=[("seq", 1)],
            limit=limit,
            projection=_LAYER_FIELDS,
        )

    def _layer(self, doc: Document, out: list[Event]) -> None:
        layer_id, state = doc["_id"], doc.get("state")
        self._states[layer_id] = str(state)
        if state in _UNFINISHED:
            self._pending[layer_id] = int(doc["seq"])
        else:
            self._pending.pop(layer_id, None)
        if state == LayerState.WAIT.value:
            self._waits[str(doc.get("ref"))] = list(doc.get("iteration") or [])
        kind = _LAYER_EVENT.get(str(state))
        if kind is None:  # WAIT (the play's wait says it), SKIP: no event, as on the bus
            return
        data = {
            "ref": doc.get("ref"),
            "iteration": list(doc.get("iteration") or []),
            "state": state,
            "appId": doc.get("app_id") or "",
            "error": doc.get("error"),
            "attempt": len(doc.get("attempts") or []),
            "startedAt": doc.get("started_at"),
            "finishedAt": doc.get("finished_at"),
        }
        event = Event(kind, self.company_id, self.flow_id, self.play_id, data, at=_layer_at(doc))
        self._emit(event, out)

    def _emit(self, event: Event, out: list[Event]) -> None:
        key = event_key(event)
        if key is None or self._sent.from_store(key):
            out.append(event)


@attrs.define(eq=False)
class PlaysWatch:
    """The play events of a flow's plays, or (``flow_id`` None) of the company's, read back
    from the store (see the module's docstring). Made by ``PlayService.watch_plays``."""

    company_id: str
    flow_id: str | None
    _plays: Collection = attrs.field(repr=False)
    _layers: Collection = attrs.field(repr=False)
    _here: Here = attrs.field(repr=False)
    _get: Callable[[str], Awaitable[Play]] = attrs.field(repr=False)  # a play as shown
    _sent: _Keys = attrs.field(factory=lambda: _Keys(MAX_KEYS), repr=False)
    _known: dict[str, None] = attrs.field(factory=dict, repr=False)  # plays seen
    _tracked: dict[str, None] = attrs.field(factory=dict, repr=False)  # unfinished, seen
    # What each play showed at the last look (state, started, wait): unchanged, not reread.
    _shown: dict[str, tuple[Any, ...]] = attrs.field(factory=dict, repr=False)
    _since: float = 0.0  # the newest created_at seen

    @property
    def done(self) -> bool:
        return False  # new plays may start at any time

    async def first_look(self) -> None:
        self._since = time.time()
        active = await self._plays.find(
            self._scoped({"status": {"$in": _ACTIVE}}),
            sort=[("created_at", -1)],
            limit=MAX_TRACKED,
            projection=_PLAY_FIELDS,
        )
        for doc in [*reversed(active), *await self._created()]:
            await self._play(doc, [], report=False)

    def note(self, event: Event) -> bool:
        key = event_key(event)
        if key is None or event.type not in (
            PLAY_STARTED,
            PLAY_WAITING,
            PLAY_COMPLETED,
            PLAY_FAILED,
        ):
            return True  # layer events and console lines come from the bus alone
        return self._sent.from_bus(key)

    async def poll(self) -> list[Event]:
        out: list[Event] = []
        looked: set[str] = set()
        for doc in await self._created():
            looked.add(doc["_id"])
            await self._play(doc, out)
        ids = [i for i in self._tracked if i not in looked]
        for start in range(0, len(ids), PAGE):
            chunk = ids[start : start + PAGE]
            docs = await self._plays.find({"_id": {"$in": chunk}}, projection=_PLAY_FIELDS)
            for gone in set(chunk) - {d["_id"] for d in docs}:  # deleted
                self._tracked.pop(gone, None)
            for doc in sorted(docs, key=lambda d: d.get("created_at") or 0.0):
                await self._play(doc, out)
        return out

    def _scoped(self, flt: dict[str, Any]) -> dict[str, Any]:
        return {**flt, "flow_id": self.flow_id} if self.flow_id is not None else flt

    async def _created(self) -> list[Document]:
        """Plays created since the last look (newest first, a page at most), oldest first;
        late inserts within ``SLACK_SECONDS`` of their created_at included."""
        docs = await self._plays.find(
            self._scoped({"created_at": {"$gte": self._since - SLACK_SECONDS}}),
            sort=[("created_at", -1)],
            limit=PAGE,
            projection=_PLAY_FIELDS,
        )
        fresh = [d for d in reversed(docs) if d["_id"] not in self._known]
        for d in fresh:
            self._known[d["_id"]] = None
            self._since = max(self._since, float(d.get("created_at") or 0.0))
        while len(self._known) > 4 * PAGE:
            del self._known[next(iter(self._known))]
        return fresh

    async def _play(self, doc: Document, out: list[Event], *, report: bool = True) -> None:
        """Report what changed of one play (without ``report``: only take it for known)."""
        play_id = doc["_id"]
        state = PlayState(doc["status"])
        if state.final:
            self._tracked.pop(play_id, None)
        else:
            self._tracked[play_id] = None
            while len(self._tracked) > MAX_TRACKED:
                del self._tracked[next(iter(self._tracked))]
        started = doc.get("started_at") is not None
        shown = (state.value, started, doc.get("wait_ref"), doc.get("wake_at"))
        if self._shown.pop(play_id, None) == shown:
            self._shown[play_id] = shown
            return
        self._shown[play_id] = shown
        while len(self._shown) > 4 * MAX_TRACKED:
            del self._shown[next(iter(self._shown))]
        if not report:  # as it is now: taken for known
            if started:
                self._sent.from_store((play_id, "started"))
            if state.final:
                self._sent.from_store((play_id, "ended"))
            return
        if self._here(play_id):
            return  # the bus reports a play running here
        if started:
            self._emit(_play_started(self.company_id, doc), out)
        if state is PlayState.WAIT:
            iteration = await self._waiting_iteration(doc)
            self._emit(_play_waiting(self.company_id, doc, iteration), out)
        elif state.final and (play_id, "ended") not in self._sent:
            try:
                play = await self._get(play_id)
            except PlayNotFound:  # deleted since (retention)
                return
            self._emit(_play_ended(play), out)

    async def _waiting_iteration(self, doc: Document) -> list[int]:
        layer = await self._layers.find_one(
            {"play_id": doc["_id"], "ref": doc.get("wait_ref"), "state": LayerState.WAIT.value},
            projection={"iteration": 1},
        )
        return list((layer or {}).get("iteration") or [])

    def _emit(self, event: Event, out: list[Event]) -> None:
        key = event_key(event)
        if key is None or self._sent.from_store(key):
            out.append(event)
