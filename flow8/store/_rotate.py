"""Key rotation: re-encrypt every secret field under the key ring's newest key.

Work proceeds per collection in ``_id`` order, one batch at a time, and records the last id
done in ``store_meta``; a killed rotation resumes after that id, and a finished one re-run
finds nothing left to do. Each rewrite is conditional on the ciphertext it read, so a secret
written concurrently (already under the new key) is never overwritten with an older value.
"""

from __future__ import annotations

from typing import Any

import structlog

from ._catalog import CollectionSpec
from ._crypto import aad, is_ciphertext
from ._filters import parse_filter
from ._ops import Pending, UpdateOp
from ._port import Store
from ._store import StoreImpl
from ._updates import ParsedUpdate
from .exceptions import KeyringError, StoreError

log = structlog.get_logger("flow8.store")
META = "store_meta"


async def _checkpoint(store: StoreImpl, spec: CollectionSpec) -> dict[str, Any] | None:
    meta = store.system.collection(META)
    return await meta.find_one({"_id": f"rotation:{spec.name}"})


async def _save(store: StoreImpl, spec: CollectionSpec, kid: str, last: str, done: bool) -> None:
    meta = store.system.collection(META)
    await meta.update_one(
        {"_id": f"rotation:{spec.name}"},
        {"$set": {"kid": kid, "last_id": last, "done": done}},
        upsert=True,
    )


def _rewrite(store: StoreImpl, spec: CollectionSpec, doc: dict[str, Any]) -> list[UpdateOp]:
    ring = store.keyring
    assert ring is not None
    company = "" if spec.scope == "system" else str(doc.get("company_id", ""))
    ops = []
    for field in sorted(spec.secret_fields & doc.keys()):
        token = doc[field]
        if not is_ciphertext(token) or ring.kid_of(token) == ring.primary_kid:
            continue
        where = f"{spec.name} {doc['_id']!r} field {field!r}"
        bound = aad(company, spec.name, doc["_id"], field)
        fresh = ring.encrypt(ring.decrypt(token, bound, where), bound)
        fdoc, node = parse_filter({"_id": doc["_id"], field: token})
        update = ParsedUpdate({"$set": {field: fresh}})
        ops.append(UpdateOp(spec, fdoc, node, update, upsert=False, multi=False))
    return ops


async def rotate_keys(store: Store, *, batch_size: int = 500) -> int:
    """Re-encrypt every secret under the newest key; return how many fields were rewritten."""
    if not isinstance(store, StoreImpl):
        raise StoreError("rotate_keys needs a store opened with open_store")
    if store.keyring is None:
        raise KeyringError("the store has no key ring to rotate to")
    if batch_size < 1:
        raise StoreError("batch_size must be at least 1")
    kid = store.keyring.primary_kid
    backend = store.backend
    total = 0
    for spec in store.catalog:
        if not spec.secret_fields:
            continue
        mark = await _checkpoint(store, spec)
        if mark and mark.get("kid") == kid and mark.get("done"):
            continue
        last = str(mark["last_id"]) if mark and mark.get("kid") == kid else ""
        while True:
            fdoc, node = parse_filter({"_id": {"$gt": last}} if last else {})
            docs = await backend.find(spec, fdoc, node, [("_id", 1)], 0, batch_size)
            if not docs:
                break
            lane = backend.lane()
            pending: list[Pending] = [
                lane.submit(op) for doc in docs for op in _rewrite(store, spec, doc)
            ]
            for p in pending:
                await p.wait()
            total += len(pending)
            last = docs[-1]["_id"]
            await _save(store, spec, kid, last, done=False)
            log.info("key_rotation_progress", collection=spec.name, last_id=last, kid=kid)
        await _save(store, spec, kid, last, done=True)
    return total
