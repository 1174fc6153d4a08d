"""KV as a play sees it: the scope names kv modules use, mapped to stored scopes, and the
subflow inheritance rules.

Scopes as stored: ``global``, ``group:<group>``, ``flow:<flow id>``. The entries themselves are
the kv service's (``flow8.services.kv.KvStore``); the engine reaches them through the narrow
:class:`KvStorage` it is given. A play reaches KV through :class:`PlayKv`, which maps the
module-facing scope names (``global``, ``flow_group``, ``flow``) and applies the subflow
inheritance rules (``kvInherit`` / ``kvConflict``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from flow8.domain import KvConflict

from ._sources import KvStorage
from .exceptions import EngineError


class KvError(EngineError, ValueError):
    """Bad KV request (unknown scope, value too large). Still a ValueError, as it was."""


def scope_key(scope: str, flow_id: str, group: str | None) -> str:
    if scope == "global":
        return "global"
    if scope == "flow_group":
        if not group:
            # Never the flow's own scope instead: the entry would go where no reader of the
            # group looks, while the caller believes it is shared.
            raise KvError("scope 'flow_group' needs a group, and this flow has none")
        return f"group:{group}"
    if scope == "flow":
        return f"flow:{flow_id}"
    raise KvError(f"unknown kv scope {scope!r} (global, flow_group or flow)")


@attrs.frozen
class PlayKv:
    """KV as one play sees it (implements ``flow8.modules.KvAccess``).

    ``parent_flows`` are the ancestor flows of a subflow play (nearest first), consulted for
    ``flow`` reads when ``inherit`` is on; ``conflict`` says whose value wins when both have
    the key. Writes always go to the play's own scope.
    """

    kv: KvStorage
    company_id: str
    flow_id: str
    group: str | None
    parent_flows: Sequence[str] = ()
    inherit: bool = True
    conflict: KvConflict = KvConflict.CHILD
    # Told every secret value the play reads or writes, so that its records mask it.
    on_secret: Callable[[Any], None] | None = None

    async def get(self, scope: str, key: str) -> tuple[bool, Any]:
        own = scope_key(scope, self.flow_id, self.group)
        chain = [own]
        if scope == "flow" and self.inherit and self.parent_flows:
            chain += [f"flow:{p}" for p in self.parent_flows]
            if self.conflict is KvConflict.PARENT:
                chain.reverse()
        for s in chain:
            found, value, secret = await self.kv.entry(self.company_id, s, key)
            if found:
                if secret and self.on_secret is not None:
                    self.on_secret(value)
                return True, value
        return False, None

    async def set(
        self,
        scope: str,
        key: str,
        value: Any,
        ttl_seconds: float | None,
        secret: bool | None = None,
    ) -> None:
        own = scope_key(scope, self.flow_id, self.group)
        if secret and self.on_secret is not None:
            self.on_secret(value)
        await self.kv.set(self.company_id, own, key, value, ttl_seconds, secret=secret)

    async def append(self, scope: str, key: str, value: Any, ttl_seconds: float | None) -> int:
        own = scope_key(scope, self.flow_id, self.group)
        return await self.kv.append(self.company_id, own, key, value, ttl_seconds)

    async def delete(self, scope: str, key: str) -> bool:
        return await self.kv.delete(
            self.company_id, scope_key(scope, self.flow_id, self.group), key
        )
