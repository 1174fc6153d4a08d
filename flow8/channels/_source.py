"""Where the channels runtime learns which channels listen: the channels service, seen
through the one method the runtime needs (so the runtime can be tested against an in-memory
twin, and never depends on how channels are stored)."""

from __future__ import annotations

from typing import Protocol

from flow8.services.channels import Channel


class ChannelSource(Protocol):
    async def listeners(self) -> list[Channel]:
        """Every enabled http/ws/tcp channel of every company."""
        ...
