"""Riding out a store that cannot be reached, for the long-lived loops that poll it (the
dispatcher, the scheduler).

Such a loop must not crash on an outage (a MongoDB election, a sqlite file another process
keeps locked): its supervisor would restart it at once into the same outage and spend its
restart budget (a few restarts in a few seconds) within a second, escalating a database
hiccup into stopping the server. It retries the round after a pause instead, and says so
once when the outage starts and once when it ends, not at every retry.
"""

from __future__ import annotations

import attrs
import structlog
import trio

from .exceptions import StoreClosed, StoreUnavailable

log = structlog.get_logger("flow8.store")

# What a round meets when the store cannot be reached. StoreClosed: the store was closed
# under a loop still running, as when its database is taken away.
UNREACHABLE = (StoreUnavailable, StoreClosed)


@attrs.define
class OutagePause:
    """The pauses of one loop while the store is unreachable: from ``first`` seconds,
    doubling, up to ``longest``. Logged as ``<loop>.store_unavailable`` (with the error) and
    ``<loop>.store_back`` (with how many retries it took)."""

    loop: str
    first: float
    longest: float
    pause: float = 0.0
    retries: int = 0

    async def wait(self, error: Exception) -> None:
        """Called with the error a round met: log it if it starts an outage, then pause."""
        if not self.retries:
            log.warning(f"{self.loop}.store_unavailable", error=str(error))
        self.retries += 1
        self.pause = min(self.longest, max(self.first, self.pause * 2))
        await trio.sleep(self.pause)

    def over(self) -> None:
        """Called after a round that reached the store."""
        if self.retries:
            log.info(f"{self.loop}.store_back", retries=self.retries)
        self.pause, self.retries = 0.0, 0
