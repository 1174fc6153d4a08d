"""When each API key was last used (`last_used_at`), written at most once a minute per key
and never on the path of the request that used it.

How the write leaves the request: the store's pipeline queues it on the store's own writer
(sqlite's group-commit queue, a Mongo write lane) and returns at once, so the request waits for
no commit, and the write is queued before the answer leaves: whatever its caller writes after
the answer lands after it. Someone still has to learn whether it failed, to log it and let the
key's next use try again. The identity service has no task of its own (it is no child of the
supervision tree), and a request's tasks end with its answer (quart-trio cancels them), so a
Trio system task waits for that one write: it is cancelled when the run ends (nothing is lost
that a restart would not lose anyway) and it never raises, since a system task's error would
end the whole run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
import trio

from flow8.logs import get_logger
from flow8.store import Store, StoreError

from ._rules import utcnow

log = get_logger("flow8.identity")


@attrs.define
class KeyUse:
    """Per process: several instances each write at most once a minute per key."""

    store: Store
    clock: Callable[[], float]
    interval: float = 60.0
    # Keys remembered at most; past it the memory starts over (at worst one more write a key).
    max_keys: int = 10_000
    # key id -> when (on `clock`) its last write was queued.
    _written: dict[str, float] = attrs.field(init=False, factory=dict)

    def note(self, key_id: str) -> None:
        """`key_id` has just authenticated a request: queue the write, if one is due."""
        now = self.clock()
        last = self._written.get(key_id)
        if last is not None and now - last < self.interval:
            return
        if len(self._written) >= self.max_keys:
            self._written.clear()
        self._written[key_id] = now
        pipe = self.store.pipeline()
        try:
            pipe.update_one(
                self.store.system.collection("api_keys"),
                {"_id": key_id},
                {"$set": {"last_used_at": utcnow()}},
            )
        except StoreError as e:  # refused before it was queued (the store is closing)
            self._failed(key_id, now, e)
            return
        trio.lowlevel.spawn_system_task(
            self._watch, key_id, now, pipe.synced(), name="flow8.identity.api_key_last_used"
        )

    async def _watch(
        self, key_id: str, noted: float, synced: Callable[[], Awaitable[None]]
    ) -> None:
        try:
            await synced()
        except Exception as e:  # a store error, or a bug: logged either way, never raised
            self._failed(key_id, noted, e)

    def _failed(self, key_id: str, noted: float, error: Exception) -> None:
        log.warning(
            "api_key_last_used_not_written",
            key_id=key_id,
            error=f"{type(error).__name__}: {error}",
        )
        if self._written.get(key_id) == noted:
            del self._written[key_id]  # the key's next use tries again
