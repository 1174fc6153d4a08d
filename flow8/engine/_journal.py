"""A play's writes: pipelined through the store's group commit, made durable on demand."""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from flow8.domain import AiUsage, PlayLayer, usage_day
from flow8.store import Store, StoreError

from ._records import LAYER_DATA, layer_doc, seal

# Writes one play may have queued in the store before it waits for the oldest of them (see
# keep_pace), counted in chunks: enough that pure steps still pipeline, few enough that a
# write of anybody else's waits behind at most this many of one play's.
MAX_IN_FLIGHT = 128
PACE_CHUNK = 32


class Created:
    """A play's own insert, still committing while the play starts: its first durability
    barrier waits for it (``durable`` waits for the insert; raises the store's error)."""

    def __init__(self, durable: Callable[[], Awaitable[None]]) -> None:
        self._durable = durable

    async def wait(self) -> None:
        try:
            await self._durable()
        except StoreError as e:
            raise RuntimeError("the play's own record could not be stored") from e


class Journal:
    """Layer and play writes of one play, in order.

    Writes are enqueued without waiting; :meth:`barrier` waits until everything enqueued so
    far is durable. The runner calls it only where it matters (before a non-idempotent
    step, before WAIT, before reporting the end), so pure steps pipeline.
    """

    def __init__(
        self,
        store: Store,
        company_id: str,
        play_id: str,
        created: Created | None = None,
        *,
        encrypt: bool = False,
    ) -> None:
        self._store = store
        self._created = created
        self._encrypt = encrypt  # layer data into the encrypted `data` field
        scope = store.tenant(company_id)
        self.plays = scope.collection("plays")
        self.layers = scope.collection("play_layers")
        self.usage = scope.collection("usage_daily")
        self.play_id = play_id
        self._pipe = store.pipeline()
        self._pending = 0
        self._chunks: collections.deque[Callable[[], Awaitable[None]]] = collections.deque()
        self.writes = 0

    def layer(
        self, layer: PlayLayer, *, new: bool, real: PlayLayer | None = None, masked: bool = False
    ) -> None:
        """Write a layer: ``new`` ones are inserted (the cheaper write), others replaced.

        ``real`` is the layer before masking, when masking changed it (kept sealed);
        ``masked`` says the play knows secrets, so an earlier state may have been sealed.
        """
        doc = layer_doc(layer)
        doc.pop("company_id")
        if self._encrypt or real is not None:
            seal(doc, LAYER_DATA, encrypt=self._encrypt, real=real)
        if new:
            self._pipe.insert_one(self.layers, doc)
        else:
            doc.pop("_id")
            update: dict[str, Any] = {"$set": doc}
            if masked and real is None:
                update["$unset"] = {"sealed": ""}  # no stale real values left behind
            self._pipe.update_one(self.layers, {"_id": layer.key}, update)
        self._pending += 1
        self.writes += 1

    def play(self, fields: dict[str, Any], *, guard: Mapping[str, Any] | None = None) -> None:
        """Update the play document; with ``guard`` (the ledger's: its state, our lease),
        only while the play matches it."""
        flt: dict[str, Any] = {"_id": self.play_id}
        if guard is not None:
            flt.update(guard)
        self._pipe.update_one(self.plays, flt, {"$set": fields})
        self._pending += 1
        self.writes += 1

    def count_usage(self, flow_id: str, usage: Iterable[AiUsage], at: float) -> None:
        """Add metered calls to the company's daily counts (``usage_daily``), one document
        per day, flow, provider and model."""
        day = usage_day(datetime.fromtimestamp(at, UTC))
        for u in usage:
            self._pipe.update_one(
                self.usage,
                {"_id": f"{day}|{flow_id}|{u.provider}|{u.model}"},
                {
                    "$setOnInsert": {
                        "day": day,
                        "flow_id": flow_id,
                        "provider": u.provider,
                        "model": u.model,
                    },
                    "$inc": {
                        "calls": 1,
                        "input_tokens": u.input_tokens,
                        "output_tokens": u.output_tokens,
                        "cost": u.cost,
                    },
                },
                upsert=True,
            )
            self._pending += 1
            self.writes += 1

    async def keep_pace(self) -> None:
        """Keep at most about ``MAX_IN_FLIGHT`` of this play's writes queued in the store.

        The store's writer serves every play and request in arrival order, so a play that
        writes faster than the disk (a long loop of cheap steps) would otherwise queue tens of
        thousands of writes ahead of everybody else's. Writes are counted in chunks; past the
        limit the play waits for its oldest chunk only, so the writer stays fed."""
        if self._pending >= PACE_CHUNK:
            self._chunks.append(self._pipe.synced())
            self._pipe = self._store.pipeline()
            self._pending = 0
        while len(self._chunks) * PACE_CHUNK > MAX_IN_FLIGHT:
            await self._chunks.popleft()()

    async def barrier(self) -> None:
        """Wait until every write enqueued so far is durable (raises the first error)."""
        if self._created is not None:
            # The play's own insert is committing concurrently (see Engine.start_play):
            # nothing of it may be reported durable before the play itself is.
            await self._created.wait()
            self._created = None
        while self._chunks:
            await self._chunks.popleft()()
        if not self._pending:
            return
        pipe = self._pipe
        self._pipe = self._store.pipeline()
        self._pending = 0
        await pipe.sync()
