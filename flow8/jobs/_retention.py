"""The ``retention`` job: deletes the plays (with their steps and play-scoped KV) and audit
entries that the companies' retention policies let go (``flow8.services.retention``).

Every run, per company: for each flow (deleted ones too) the play policy that applies (flow,
else group, else company, else the default) gives a bound, the older of ``now - max(maxAgeDays,
enforcedMinimumDays)`` and the creation time of the flow's ``minEntries``-th newest play; the
finished plays (DONE, FAIL, CANCEL: never NEW, RUN, WAIT or DEFERRED ones) created before it go,
oldest first, ``batch_size`` at a time. The filtered-plays policy does the same for finished
plays with a FILTERED step (scanned at most ``scan_limit`` plays per flow and run). The audit
policy (company level) does the same for audit entries. Between two batches the job yields
(``between_batches``, a short sleep by default) so requests keep being served promptly. Each
company where something went gets one summary audit entry (``retention_run``) per run.

Crash safety. A batch of plays is deleted in this order:

1. its ids are written to the system collection ``retention_journal``;
2. the plays are deleted (only those still finished);
3. the layers and play-scoped KV of the plays that are now gone are deleted;
4. the journal entry is removed.

A crash (or a cancelled run) can stop this anywhere. Before 2, nothing is gone. Between 2 and
4, some plays are gone and some of their layers may remain: they are unreachable (every read of
a layer goes through its play, which answers 404), so no half-deleted play is ever visible, and
every run starts by finishing the journal entries older than ``journal_grace`` (5 minutes: a
live batch takes well under a second): it deletes the layers and KV of the journaled plays that
no longer exist (a journaled play that still exists is left to the policies, which are
consulted again). The grace keeps one instance from finishing, and removing, the entry of a
batch another instance is still working on. Deleting layers first instead would show a play
without its steps in the meantime. Each step is idempotent, so two instances running the job
at once only repeat work (each audits what it removed itself).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
import trio

from flow8.logs import get_logger
from flow8.services.audit import AuditEntry
from flow8.services.retention import Policy, RetentionPolicies, resolve
from flow8.store import Store

log = get_logger("flow8.jobs.retention")

FINAL = ["DONE", "FAIL", "CANCEL"]
DAY = 86_400.0
JOURNAL = "retention_journal"


async def _pause() -> None:
    await trio.sleep(0.02)


def _zero() -> dict[str, int]:
    return {"plays": 0, "filteredPlays": 0, "layers": 0, "kv": 0, "audit": 0}


@attrs.define
class Retention:
    store: Store
    policies: RetentionPolicies
    audit: Callable[[AuditEntry], None]
    batch_size: int = 500
    scan_limit: int = 10_000
    # What the job awaits between two batches: yields to the requests.
    between_batches: Callable[[], Awaitable[None]] = _pause
    clock: Callable[[], float] = time.time  # wall clock (epoch seconds): plays' created_at
    journal_grace: float = 300.0  # seconds before a journal entry counts as a crashed batch's
    # What the last run removed in each company where it removed something.
    last_by_company: dict[str, dict[str, int]] = attrs.field(init=False, factory=dict)

    async def run_once(self) -> dict[str, int]:
        """One run over every company; counts of what went."""
        total = await self._finish_journal()
        by_company: dict[str, dict[str, int]] = {}
        companies = await self.store.system.collection("companies").find({}, projection={"_id": 1})
        for company in companies:
            cid = company["_id"]
            removed = await self._company(cid)
            if any(removed.values()):
                by_company[cid] = removed
                self.audit(
                    AuditEntry(
                        "retention_run",
                        company_id=cid,
                        target_type="retention",
                        target_id="retention",
                        details=removed,
                    )
                )
            for k, v in removed.items():
                total[k] += v
        self.last_by_company = by_company
        return total

    # -- crash recovery ------------------------------------------------------------------

    async def _finish_journal(self) -> dict[str, int]:
        out = _zero()
        journal = self.store.system.collection(JOURNAL)
        stale = {"started_at": {"$lt": self.clock() - self.journal_grace}}
        for entry in await journal.find(stale, sort=[("_id", 1)]):
            ids: list[str] = entry["play_ids"]
            cid: str = entry["company_id"]
            plays = self.store.tenant(cid).collection("plays")
            present = {
                d["_id"] for d in await plays.find({"_id": {"$in": ids}}, projection={"_id": 1})
            }
            gone = [i for i in ids if i not in present]
            layers, kv = await self._delete_remains(cid, gone)
            out["layers"] += layers
            out["kv"] += kv
            await journal.delete_one({"_id": entry["_id"]})
        return out

    async def _delete_remains(self, cid: str, gone: Sequence[str]) -> tuple[int, int]:
        if not gone:
            return 0, 0
        tenant = self.store.tenant(cid)
        layers = await tenant.collection("play_layers").delete_many(
            {"play_id": {"$in": list(gone)}}
        )
        kv = await tenant.collection("kv").delete_many(
            {"scope": {"$in": [f"play:{i}" for i in gone]}}
        )
        return layers, kv

    async def _delete_plays(self, cid: str, ids: list[str], out: dict[str, int], kind: str) -> None:
        journal = self.store.system.collection(JOURNAL)
        entry = await journal.insert_one(
            {"company_id": cid, "play_ids": ids, "started_at": self.clock()}
        )
        plays = self.store.tenant(cid).collection("plays")
        out[kind] += await plays.delete_many({"_id": {"$in": ids}, "status": {"$in": FINAL}})
        present = {d["_id"] for d in await plays.find({"_id": {"$in": ids}}, projection={"_id": 1})}
        layers, kv = await self._delete_remains(cid, [i for i in ids if i not in present])
        out["layers"] += layers
        out["kv"] += kv
        await journal.delete_one({"_id": entry})

    # -- one company -----------------------------------------------------------------------

    async def _bound(self, coll: Any, match: Mapping[str, Any], policy: Policy, now: Any) -> Any:
        """The creation time before which entries matching ``match`` may go (None: none)."""
        bound = now(policy.keep_days)
        if policy.min_entries > 0:
            nth = await coll.find(
                dict(match), sort=[("created_at", -1)], skip=policy.min_entries - 1, limit=1,
                projection={"created_at": 1},
            )  # fmt: skip
            if not nth:
                return None
            bound = min(bound, nth[0]["created_at"])
        return bound

    async def _company(self, cid: str) -> dict[str, int]:
        out = _zero()
        tenant = self.store.tenant(cid)
        policies = await self.policies.list(cid)
        defaults = self.policies.defaults
        epoch = self.clock()

        def play_time(days: float) -> float:
            return epoch - days * DAY

        def audit_time(days: float) -> datetime:
            return datetime.fromtimestamp(epoch - days * DAY, UTC)

        plays = tenant.collection("plays")
        flows = await tenant.collection("flows").find({}, projection={"_id": 1, "definition": 1})
        for flow in flows:
            fid = flow["_id"]
            group = (flow.get("definition") or {}).get("group")
            policy = resolve(policies, "plays", defaults, flow_id=fid, group=group)
            if policy.enabled:
                bound = await self._bound(plays, {"flow_id": fid}, policy, play_time)
                if bound is not None:
                    await self._plays(cid, fid, bound, out)
            filtered = resolve(policies, "plays.filtered", defaults, flow_id=fid, group=group)
            if filtered.enabled:
                bound = await self._bound(plays, {"flow_id": fid}, filtered, play_time)
                if bound is not None:
                    await self._filtered_plays(cid, fid, bound, out)
        audit_policy = resolve(policies, "audit", defaults)
        if audit_policy.enabled:
            logs = tenant.collection("audit_logs")
            bound = await self._bound(logs, {}, audit_policy, audit_time)
            while bound is not None:
                batch = await logs.find(
                    {"created_at": {"$lt": bound}}, sort=[("created_at", 1)],
                    limit=self.batch_size, projection={"_id": 1},
                )  # fmt: skip
                if not batch:
                    break
                out["audit"] += await logs.delete_many({"_id": {"$in": [d["_id"] for d in batch]}})
                await self.between_batches()
                if len(batch) < self.batch_size:
                    break
        return out

    async def _plays(self, cid: str, fid: str, bound: float, out: dict[str, int]) -> None:
        plays = self.store.tenant(cid).collection("plays")
        while True:
            batch = await plays.find(
                {"flow_id": fid, "status": {"$in": FINAL}, "created_at": {"$lt": bound}},
                sort=[("created_at", 1)], limit=self.batch_size, projection={"_id": 1},
            )  # fmt: skip
            if not batch:
                return
            await self._delete_plays(cid, [d["_id"] for d in batch], out, "plays")
            await self.between_batches()
            if len(batch) < self.batch_size:
                return

    async def _filtered_plays(self, cid: str, fid: str, bound: float, out: dict[str, int]) -> None:
        tenant = self.store.tenant(cid)
        plays, layers = tenant.collection("plays"), tenant.collection("play_layers")
        after: float | None = None
        seen: set[str] = set()
        scanned = 0
        while scanned < self.scan_limit:
            created: dict[str, Any] = {"$lt": bound}
            if after is not None:
                created["$gte"] = after
            page = await plays.find(
                {"flow_id": fid, "status": "DONE", "created_at": created},
                sort=[("created_at", 1), ("_id", 1)], limit=self.batch_size,
                projection={"_id": 1, "created_at": 1},
            )  # fmt: skip
            full = len(page) == self.batch_size
            if after is not None:  # created_at ties: skip what the last page saw
                page = [d for d in page if d["created_at"] > after or d["_id"] not in seen]
            if not page:
                return
            scanned += len(page)
            ids = [d["_id"] for d in page]
            hits = await layers.find(
                {"play_id": {"$in": ids}, "state": "FILTERED"}, projection={"play_id": 1}
            )
            chosen = sorted({h["play_id"] for h in hits})
            if chosen:
                await self._delete_plays(cid, chosen, out, "filteredPlays")
            last = page[-1]["created_at"]
            seen = {d["_id"] for d in page if d["created_at"] == last} | (
                seen if last == after else set()
            )
            after = last
            await self.between_batches()
            if not full:
                return
