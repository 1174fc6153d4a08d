"""An in-memory twin of the audit store sink, shared by audit and HTTP tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import trio


class MemorySink:
    """In-memory twin of the store-backed sink; can be told to fail."""

    def __init__(self) -> None:
        self.batches: list[tuple[str | None, list[dict[str, Any]]]] = []
        self.fail = 0
        self.gate: trio.Event | None = None

    async def write(self, company_id: str | None, docs: Sequence[dict[str, Any]]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            self.fail -= 1
            raise OSError("disk on fire")
        self.batches.append((company_id, list(docs)))

    @property
    def docs(self) -> list[dict[str, Any]]:
        return [d for _, docs in self.batches for d in docs]
