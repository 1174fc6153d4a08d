"""KV: read and manage a company's key-value entries (values encrypted at rest)."""

from __future__ import annotations

import builtins
from typing import Any

import attrs

from flow8.engine import MASK, KvError, scope_key

from ._store import KvStore


@attrs.define
class KvService:
    """``scope`` is ``global``, ``flow_group`` (with ``group``) or ``flow`` (with
    ``flow_id``), as the kv modules see them. Raises :class:`KvError` for a bad scope or key.
    """

    kv: KvStore

    def _scope(self, scope: str, flow_id: str | None, group: str | None) -> str:
        if scope == "flow" and not flow_id:
            raise KvError("scope 'flow' needs a flow id")
        if scope == "flow_group" and not group:
            raise KvError("scope 'flow_group' needs a group")
        return scope_key(scope, flow_id or "", group)

    @staticmethod
    def _key(key: str) -> str:
        if not isinstance(key, str) or not key or len(key) > 256:
            raise KvError("a kv key is a string of 1 to 256 characters")
        return key

    async def get(
        self,
        company_id: str,
        key: str,
        *,
        scope: str = "global",
        flow_id: str | None = None,
        group: str | None = None,
    ) -> tuple[bool, Any]:
        """(found, value)."""
        return await self.kv.get(company_id, self._scope(scope, flow_id, group), self._key(key))

    async def set(
        self,
        company_id: str,
        key: str,
        value: Any,
        *,
        scope: str = "global",
        flow_id: str | None = None,
        group: str | None = None,
        ttl_seconds: float | None = None,
        secret: bool | None = None,
    ) -> dict[str, Any]:
        """``secret``: True marks the entry secret (its value is never shown again and is
        masked in the records of plays that use it), False unmarks it, None leaves it.
        Answers the entry as written, shown as :meth:`list` shows it."""
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise KvError("ttlSeconds must be positive")
        s = self._scope(scope, flow_id, group)
        doc = await self.kv.set(company_id, s, self._key(key), value, ttl_seconds, secret=secret)
        return _shown(doc)

    async def delete(
        self,
        company_id: str,
        key: str,
        *,
        scope: str = "global",
        flow_id: str | None = None,
        group: str | None = None,
    ) -> bool:
        s = self._scope(scope, flow_id, group)
        return await self.kv.delete(company_id, s, self._key(key))

    async def list(
        self,
        company_id: str,
        *,
        scope: str = "global",
        flow_id: str | None = None,
        group: str | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """Live entries of one scope: ``{key, value, expiresAt, secret}`` sorted by key; a
        secret entry's value is shown as ``***``."""
        docs = await self.kv.list(company_id, self._scope(scope, flow_id, group))
        return [_shown(d) for d in docs]


def _shown(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": doc["key"],
        "value": MASK if doc.get("secret") else doc.get("value"),
        "expiresAt": doc.get("expires_at"),
        "secret": bool(doc.get("secret")),
    }
