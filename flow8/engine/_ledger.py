"""The play ledger: every change of a play's state and every write of its lease.

Each change is a conditional update whose guard (the states it may leave, and the lease
where the change belongs to the lease's holder) comes from the domain's transition table
(:data:`flow8.domain.PlayTransition`), so a change the table forbids is refused by the
store itself, whoever races it: a write whose guard no longer matches changes nothing.

The writes a play makes while it runs (start, park, finish) go through its journal, queued
behind its other writes, and a claimed-at-birth play's insert (and its hand back) through
the start's pipeline: the ledger decides what is written and under which guard, the
caller keeps when it becomes durable.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from flow8.domain import (
    PlayState,
    PlayTransition,
    WaitReason,
    check_transition_target,
    transition_sources,
    transition_targets,
)
from flow8.store import Collection, Document, Pipeline, ReturnDocument, Store, UpdateResult

from ._journal import Journal

T = PlayTransition
RENEW_CHUNK = 500  # plays per lease renewal write (one `update_many` each)


def state_guard(transition: PlayTransition) -> dict[str, Any]:
    """The filter on ``status`` that lets ``transition`` apply only to a play in one of the
    states the domain's table says it may leave."""
    sources = [s.value for s in transition_sources(transition)]
    if not sources:
        raise ValueError(f"a play's {transition} leaves no state: it has no guard")
    return {"status": sources[0] if len(sources) == 1 else {"$in": sources}}


def _claimable(state: PlayState, now: float) -> dict[str, Any]:
    """What makes a play in ``state`` claimable (the table says which states may be)."""
    if state is PlayState.RUN:  # its holder is gone: its lease lapsed
        return {"status": state.value, "lease_expires_at": {"$lt": now}}
    if state is PlayState.WAIT:  # parked until a time now past
        return {"status": state.value, "wake_at": {"$lte": now}}
    return {"status": state.value}


@attrs.define
class PlayLedger:
    """The ``plays`` collection as this instance (``owner``) changes it: one method per
    :class:`PlayTransition`, of the same name. A method that finds its guard no longer
    met writes nothing and says so (False, or None for those that answer the document)."""

    # Other services are left out of the repr (repr=False): a traceback rendered with its
    # locals (the console log) walks an attrs object's fields, and through them the store.
    store: Store = attrs.field(repr=False)
    owner: str  # this instance's lease owner name
    lease_seconds: float
    # Guards of the changes only the lease's holder (this instance) makes.
    _held: dict[PlayTransition, dict[str, Any]] = attrs.field(init=False, repr=False)
    _state: dict[PlayTransition, dict[str, Any]] = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        # Built once: the hot path (a play's start, end, lease renewal) only copies them.
        self._state = {t: state_guard(t) for t in T if transition_sources(t)}
        self._held = {
            t: {**self._state[t], "lease_owner": self.owner}
            for t in (
                T.RENEW,
                T.START,
                T.PARK,
                T.DEFER,
                T.FINISH,
                T.COUNT_CRASH,
                T.BACK_OFF,
                T.HAND_BACK,
            )
        }

    def guard(self, transition: PlayTransition) -> Mapping[str, Any]:
        """The fixed part of ``transition``'s filter (its states, and this instance's lease
        where only the holder makes it); ``claim`` and ``end_unheld`` add what they saw."""
        return self._held.get(transition) or self._state[transition]

    # -- collections and reads ------------------------------------------------------------

    def plays(self, company_id: str) -> Collection:
        return self.store.tenant(company_id).collection("plays")

    @property
    def all_plays(self) -> Collection:
        """Every company's plays (the dispatcher's view)."""
        return self.store.cross_tenant.collection("plays")

    async def read(self, company_id: str, play_id: str) -> Document | None:
        return await self.plays(company_id).find_one({"_id": play_id})

    def holds(self, doc: Mapping[str, Any]) -> bool:
        """Whether this instance holds the lease of the play ``doc`` (as it was read)."""
        return bool(doc.get("lease_owner") == self.owner)

    async def count_running(self, company_id: str, flow_id: str) -> int:
        return await self.plays(company_id).count(
            {"flow_id": flow_id, "status": PlayState.RUN.value}
        )

    async def deferred_flows(self, limit: int = 100) -> list[tuple[str, str]]:
        """(company, flow) of the oldest ``limit`` DEFERRED plays, each once, oldest first."""
        deferred = await self.all_plays.find(
            {"status": PlayState.DEFERRED.value}, sort=[("created_at", 1)], limit=limit
        )
        return list(dict.fromkeys((d["company_id"], d["flow_id"]) for d in deferred))

    async def cancels_asked(self) -> list[str]:
        """Plays held here whose cancel was asked for (through any instance)."""
        found = await self.all_plays.find(
            {"lease_owner": self.owner, "cancel_requested": True}, projection={"_id": 1}
        )
        return [d["_id"] for d in found]

    async def taken(self, play_ids: list[str]) -> list[str]:
        """Those of ``play_ids`` (running here) that another instance has claimed."""
        lost: list[str] = []
        for start in range(0, len(play_ids), RENEW_CHUNK):
            for d in await self.all_plays.find(
                {
                    "_id": {"$in": play_ids[start : start + RENEW_CHUNK]},
                    "status": PlayState.RUN.value,
                    "lease_owner": {"$ne": self.owner},
                },
                projection={"_id": 1},
            ):
                lost.append(d["_id"])
        return lost

    # -- birth ----------------------------------------------------------------------------

    def create(self, pipe: Pipeline, company_id: str, doc: dict[str, Any]) -> None:
        """Store a new play (``doc["status"]`` NEW, or DEFERRED) for a dispatcher to claim."""
        check_transition_target(T.CREATE, PlayState(doc["status"]))
        pipe.insert_one(self.plays(company_id), doc)

    def create_claimed(
        self, pipe: Pipeline, company_id: str, doc: dict[str, Any], now: float
    ) -> None:
        """Store a new play already claimed by this instance (it starts it right away)."""
        doc["status"] = transition_targets(T.CREATE_CLAIMED)[0].value
        doc["lease_owner"] = self.owner
        doc["lease_expires_at"] = now + self.lease_seconds
        doc["started_at"] = now
        pipe.insert_one(self.plays(company_id), doc)

    def hand_back(self, pipe: Pipeline, company_id: str, play_id: str) -> None:
        """A play claimed at birth whose actor will not start here: NEW again, for any
        dispatcher. Queued behind its insert, without waiting for it."""
        pipe.update_one(
            self.plays(company_id),
            {"_id": play_id, **self._held[T.HAND_BACK]},
            {
                "$set": {
                    "status": PlayState.NEW.value,
                    "lease_owner": None,
                    "lease_expires_at": None,
                    "started_at": None,
                }
            },
        )

    # -- the dispatcher -------------------------------------------------------------------

    async def claim(self, *, skip_companies: Sequence[str] = ()) -> Document | None:
        """Claim the oldest runnable play of any company but ``skip_companies`` (a NEW one, a
        RUN one whose lease lapsed, a WAIT one now due); the document as it was before."""
        now = time.time()
        runnable: dict[str, Any] = {
            "$or": [_claimable(s, now) for s in transition_sources(T.CLAIM)]
        }
        if skip_companies:
            runnable = {"$and": [runnable, {"company_id": {"$nin": list(skip_companies)}}]}
        return await self.all_plays.find_one_and_update(
            runnable,
            {
                "$set": {
                    "status": PlayState.RUN.value,
                    "lease_owner": self.owner,
                    "lease_expires_at": now + self.lease_seconds,
                    "wait_reason": None,
                    "wait_ref": None,
                }
            },
            sort=[("created_at", 1)],
            return_document=ReturnDocument.BEFORE,
        )

    async def renew(self, play_ids: list[str]) -> None:
        """Extend the leases of ``play_ids`` that are still this instance's, in writes of
        ``RENEW_CHUNK`` plays."""
        renewed = {"$set": {"lease_expires_at": time.time() + self.lease_seconds}}
        for start in range(0, len(play_ids), RENEW_CHUNK):
            await self.all_plays.update_many(
                {"_id": {"$in": play_ids[start : start + RENEW_CHUNK]}, **self._held[T.RENEW]},
                renewed,
            )

    async def defer(self, company_id: str, play_id: str) -> bool:
        """A play just claimed whose flow runs as many plays as it may waits, unleased."""
        return _applied(
            await self.plays(company_id).update_one(
                {"_id": play_id, **self._held[T.DEFER]},
                {
                    "$set": {
                        "status": PlayState.DEFERRED.value,
                        "lease_owner": None,
                        "lease_expires_at": None,
                    }
                },
            )
        )

    async def promote(self, company_id: str, flow_id: str) -> bool:
        """Make the flow's oldest DEFERRED play NEW when the flow has room for it."""
        plays = self.plays(company_id)
        deferred = self._state[T.PROMOTE]
        doc = await plays.find_one({"flow_id": flow_id, **deferred})
        if doc is None:
            return False
        limit = doc.get("max_concurrent") or 0
        if limit and await self.count_running(company_id, flow_id) >= limit:
            return False
        promoted = await plays.find_one_and_update(
            {"flow_id": flow_id, **deferred},
            {"$set": {"status": PlayState.NEW.value}},
            sort=[("created_at", 1)],
        )
        return promoted is not None

    # -- the play's holder (its journal: queued, durable at its next barrier) -------------

    def start(self, journal: Journal, now: float) -> None:
        journal.play({"started_at": now}, guard=self._held[T.START])

    def park(self, journal: Journal, reason: WaitReason, ref: str, wake_at: float | None) -> None:
        """WAIT (for ``wake_at``, or an approval), holding no lease: a dispatcher claims it
        when it is due, an approval resumes it."""
        journal.play(
            {
                "status": PlayState.WAIT.value,
                "wait_reason": reason.value,
                "wait_ref": ref,
                "wake_at": wake_at,
                "lease_owner": None,
                "lease_expires_at": None,
            },
            guard=self._held[T.PARK],
        )

    def finish(
        self,
        journal: Journal,
        state: PlayState,
        *,
        output: Any,
        error: str | None,
        now: float,
        data: dict[str, Any] | None = None,
        clear_wait: bool = False,
    ) -> None:
        """DONE, FAIL or CANCEL with its output and error; with ``data`` (play data
        encrypted at rest) the output is stored there instead; ``clear_wait`` for a play
        that had waited."""
        check_transition_target(T.FINISH, state)
        fields: dict[str, Any] = {
            "status": state.value,
            "output": output,
            "error": error,
            "finished_at": now,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if data is not None:
            fields["output"] = None
            fields["data"] = data
        if clear_wait:
            fields.update({"wait_reason": None, "wait_ref": None, "wake_at": None})
        journal.play(fields, guard=self._held[T.FINISH])

    async def count_crash(self, company_id: str, play_id: str) -> Document | None:
        """One more crash of the play's actor; the document after, None if not ours."""
        return await self.plays(company_id).find_one_and_update(
            {"_id": play_id, **self._held[T.COUNT_CRASH]},
            {"$inc": {"crashes": 1}},
            return_document=ReturnDocument.AFTER,
        )

    async def back_off(self, company_id: str, play_id: str, until: float, reason: str) -> bool:
        """Let the lease of a crashed play lapse at ``until`` (then any dispatcher resumes
        it), noting why."""
        return _applied(
            await self.plays(company_id).update_one(
                {"_id": play_id, **self._held[T.BACK_OFF]},
                {"$set": {"lease_expires_at": until, "last_crash": reason}},
            )
        )

    # -- commands -------------------------------------------------------------------------

    async def wake(
        self,
        company_id: str,
        play_id: str,
        approvals: Mapping[str, str],
        now: float,
        *,
        here: bool,
    ) -> Document | None:
        """Resume a waiting play with ``approvals`` (field -> decision) recorded: claimed by
        this instance when ``here`` (it starts it), else with a lapsed lease, for any
        dispatcher. The document after, None if it was not waiting."""
        fields: dict[str, Any] = {f"approvals.{k}": v for k, v in approvals.items()}
        fields.update({"status": PlayState.RUN.value, "wait_reason": None, "wait_ref": None})
        fields["lease_owner"] = self.owner if here else None
        fields["lease_expires_at"] = now + self.lease_seconds if here else 0.0
        return await self.plays(company_id).find_one_and_update(
            {"_id": play_id, **self._state[T.WAKE]},
            {"$set": fields},
            return_document=ReturnDocument.AFTER,
        )

    async def reject(
        self, company_id: str, play_id: str, error: str, now: float
    ) -> Document | None:
        """FAIL a play waiting for an approval; the document after, None if not waiting."""
        return await self.plays(company_id).find_one_and_update(
            {"_id": play_id, **self._state[T.REJECT]},
            {
                "$set": {
                    "status": PlayState.FAIL.value,
                    "error": error,
                    "finished_at": now,
                    "wait_reason": None,
                    "wait_ref": None,
                }
            },
            return_document=ReturnDocument.AFTER,
        )

    async def cancel(self, company_id: str, play_id: str, now: float) -> Document | None:
        """CANCEL a play nothing runs (NEW, DEFERRED, WAIT); the document after, None when
        it is in another state (running, or ended)."""
        return await self.plays(company_id).find_one_and_update(
            {"_id": play_id, **self._state[T.CANCEL]},
            {
                "$set": {
                    "status": PlayState.CANCEL.value,
                    "error": "cancelled",
                    "finished_at": now,
                    "lease_owner": None,
                }
            },
            return_document=ReturnDocument.AFTER,
        )

    async def request_cancel(self, company_id: str, play_id: str) -> Document | None:
        """Ask the holder of a running play to cancel it (at its next lease renewal); the
        document after, None if it is not running."""
        return await self.plays(company_id).find_one_and_update(
            {"_id": play_id, **self._state[T.REQUEST_CANCEL]},
            {"$set": {"cancel_requested": True}},
            return_document=ReturnDocument.AFTER,
        )

    async def end_unheld(
        self,
        company_id: str,
        doc: Mapping[str, Any],
        state: PlayState,
        error: str,
        now: float,
        *,
        lapsed: bool = False,
    ) -> Document | None:
        """End (FAIL, CANCEL) a running play no actor runs, only while its lease is as
        ``doc`` shows it (with ``lapsed``, its expiry too): a play another instance has just
        claimed is left to it. The document after, None when it was left."""
        check_transition_target(T.END_UNHELD, state)
        held: dict[str, Any] = {"_id": doc["_id"], **self._state[T.END_UNHELD]}
        held["lease_owner"] = doc.get("lease_owner")
        if lapsed:
            held["lease_expires_at"] = doc.get("lease_expires_at")
        return await self.plays(company_id).find_one_and_update(
            held,
            {
                "$set": {
                    "status": state.value,
                    "error": error,
                    "output": None,
                    "finished_at": now,
                    "lease_owner": None,
                    "lease_expires_at": None,
                }
            },
            return_document=ReturnDocument.AFTER,
        )


def _applied(result: UpdateResult) -> bool:
    return result.matched_count > 0
