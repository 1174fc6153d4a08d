"""The install gate: one first install, even when several processes or instances sharing a
database ask at the same moment.

An install starts by inserting a marker document with a fixed `_id` into the system collection
`store_meta`. The store's unique `_id` lets exactly one insert win - on sqlite across the
processes sharing the file, on MongoDB across instances - so the loser gets `DuplicateKey` and
answers "already installed" without touching anything. A claim left pending by a process that
died mid-install is taken over after `stale_after`, atomically (find-and-modify on the old
claim token), so a crash cannot lock the install out forever; a failed install releases its
claim so it can be retried.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import attrs

from flow8.store import Collection, DuplicateKey, ReturnDocument, Store

from ._rules import utcnow
from .exceptions import AlreadyInstalled

MARKER_COLLECTION = "store_meta"
MARKER_ID = "identity:install"


@attrs.frozen
class InstallGate:
    store: Store
    # Far longer than an install takes (one password hash and three inserts).
    stale_after: timedelta = timedelta(minutes=2)

    def _meta(self) -> Collection:
        return self.store.system.collection(MARKER_COLLECTION)

    async def _has_users(self) -> bool:
        return await self.store.system.collection("users").count({}) > 0

    async def claim(self) -> str:
        """The claim token of this install; `AlreadyInstalled` when another one holds or
        finished the gate, or when users exist already."""
        token = secrets.token_hex(16)
        doc = {"_id": MARKER_ID, "state": "pending", "claim": token, "claimed_at": utcnow()}
        try:
            await self._meta().insert_one(doc)
        except DuplicateKey:
            await self._take_over(token)
        if await self._has_users():
            # A database installed before the gate existed: close the gate for good.
            await self.complete(token)
            raise AlreadyInstalled("flow8 is already installed")
        return token

    async def _take_over(self, token: str) -> None:
        marker = await self._meta().find_one({"_id": MARKER_ID})
        stale = utcnow() - self.stale_after
        if (
            marker is None
            or marker.get("state") != "pending"
            or marker["claimed_at"] > stale
            or await self._has_users()
        ):
            # (A marker deleted between our insert and this read was a failed install
            # releasing its claim; the caller may simply retry.)
            raise AlreadyInstalled("flow8 is already installed")
        taken = await self._meta().find_one_and_update(
            {"_id": MARKER_ID, "state": "pending", "claim": marker["claim"]},
            {"$set": {"claim": token, "claimed_at": utcnow()}},
            return_document=ReturnDocument.AFTER,
        )
        if taken is None:  # another process took it over first
            raise AlreadyInstalled("flow8 is already installed")

    async def complete(self, token: str) -> None:
        await self._meta().update_one(
            {"_id": MARKER_ID, "claim": token},
            {"$set": {"state": "done", "completed_at": utcnow()}},
        )

    async def release(self, token: str) -> None:
        await self._meta().delete_one({"_id": MARKER_ID, "claim": token, "state": "pending"})
