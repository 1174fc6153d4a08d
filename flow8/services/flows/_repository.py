"""Flows and their immutable versions in the store: the flows service's persistence, and the
``flow8.engine.FlowSource`` the engine reads the versions it runs from."""

from __future__ import annotations

import builtins
import time
from collections import OrderedDict
from typing import Any

import attrs

from flow8.domain import Flow, FlowDefinition
from flow8.engine import FlowNotFound, check_definition, flow_definition_doc, flow_from_doc
from flow8.modules import ModuleRegistry
from flow8.store import DuplicateKey, Store, new_id


@attrs.define
class FlowRepository:
    """Create, version, read and delete flows. Every change makes a new version; old
    versions stay readable (plays pin them). Nothing is stored that does not validate
    against ``registry`` (the engine's, so that what is stored compiles)."""

    store: Store
    registry: ModuleRegistry
    # Versions are immutable, so a parsed version never goes stale.
    _cache: OrderedDict[tuple[str, str, int], Flow] = attrs.field(factory=OrderedDict)
    cache_size: int = 1024
    # Which version is the latest, remembered briefly: changes made here are seen at once
    # (they update it), changes made by another instance within ``head_ttl`` seconds.
    _heads: dict[tuple[str, str], tuple[int, float]] = attrs.field(factory=dict)
    head_ttl: float = 1.0

    def _remember(self, flow: Flow) -> Flow:
        self._cache[(flow.company_id, flow.id, flow.version)] = flow
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return flow

    def _flows(self, company_id: str) -> Any:
        return self.store.tenant(company_id).collection("flows")

    def _versions(self, company_id: str) -> Any:
        return self.store.tenant(company_id).collection("flow_versions")

    async def create(
        self, company_id: str, definition: FlowDefinition, *, flow_id: str | None = None
    ) -> Flow:
        """Validate and store version 1 of a new flow."""
        check_definition(definition, self.registry)
        now = time.time()
        fid = flow_id or new_id()
        flow = Flow(fid, company_id, 1, definition, now, now)
        await self._versions(company_id).insert_one(self._version_doc(flow))
        await self._flows(company_id).insert_one(
            {
                "_id": fid,
                "name": definition.name,
                "version": 1,
                "definition": flow_definition_doc(definition),
                "created_at": now,
                "updated_at": now,
            }
        )
        return flow

    def _version_doc(self, flow: Flow) -> dict[str, Any]:
        return {
            "_id": f"{flow.id}:{flow.version}",
            "flow_id": flow.id,
            "version": flow.version,
            "definition": flow_definition_doc(flow.definition),
            # The version's own time; the flow's creation is kept beside it, so a version read
            # alone (plays pin them) knows both without reading the flow's document.
            "created_at": flow.updated_at,
            "flow_created_at": flow.created_at,
        }

    async def _flow_created_at(self, company_id: str, flow_id: str) -> float | None:
        """When the flow was created, from its document (never changed after `create`)."""
        head = await self._flows(company_id).find_one(
            {"_id": flow_id}, projection={"created_at": 1}
        )
        return None if head is None else float(head["created_at"])

    async def _from_versions(
        self, company_id: str, vdocs: builtins.list[Any]
    ) -> builtins.list[Flow]:
        """Versions as flows: `created_at` is the flow's creation, `updated_at` the version's.

        Version documents written before `flow_created_at` existed lack it: the flow's
        document has it (one read, and only for those)."""
        created: float | None = None
        if any("flow_created_at" not in d for d in vdocs):
            created = await self._flow_created_at(company_id, vdocs[0]["flow_id"])
        flows = []
        for d in vdocs:
            first = d.get("flow_created_at", created)
            if first is None:  # no flow document either (never expected): the version's time
                first = d["created_at"]
            doc = dict(d, company_id=company_id, created_at=first, updated_at=d["created_at"])
            flows.append(flow_from_doc(doc))
        return flows

    async def update(self, company_id: str, flow_id: str, definition: FlowDefinition) -> Flow:
        """Store ``definition`` as the next version of ``flow_id``."""
        check_definition(definition, self.registry)
        for _ in range(10):
            current = await self.get(company_id, flow_id)
            now = time.time()
            flow = Flow(
                flow_id, company_id, current.version + 1, definition, current.created_at, now
            )
            try:
                await self._versions(company_id).insert_one(self._version_doc(flow))
            except DuplicateKey:
                continue  # a concurrent update took this version number; go again
            await self._flows(company_id).update_one(
                {"_id": flow_id, "version": {"$lt": flow.version}},
                {
                    "$set": {
                        "name": definition.name,
                        "version": flow.version,
                        "definition": flow_definition_doc(definition),
                        "updated_at": now,
                    }
                },
            )
            self._heads[(company_id, flow_id)] = (flow.version, time.monotonic() + self.head_ttl)
            return flow
        raise FlowNotFound(f"flow {flow_id!r} is being updated too often to add a version")

    def evict_expired(self) -> int:
        """Drop the remembered heads past ``head_ttl`` (the ``ttl-cache`` job); how many went."""
        now = time.monotonic()
        stale = [k for k, (_, until) in self._heads.items() if until <= now]
        for key in stale:
            del self._heads[key]
        return len(stale)

    async def _latest(self, company_id: str, flow_id: str) -> int:
        key = (company_id, flow_id)
        now = time.monotonic()
        hit = self._heads.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        head = await self._flows(company_id).find_one(
            {"_id": flow_id}, projection={"version": 1, "deleted": 1}
        )
        if head is None or head.get("deleted"):
            self._heads.pop(key, None)
            raise FlowNotFound(f"flow {flow_id!r} not found")
        version = int(head["version"])
        self._heads[key] = (version, now + self.head_ttl)
        while len(self._heads) > self.cache_size:
            del self._heads[next(iter(self._heads))]
        return version

    async def get(self, company_id: str, flow_id: str, version: int | None = None) -> Flow:
        """The latest (or the given) version of a flow; raises :class:`FlowNotFound`."""
        if version is None:
            version = await self._latest(company_id, flow_id)
        cached = self._cache.get((company_id, flow_id, version))
        if cached is not None:
            return cached
        vdoc = await self._versions(company_id).find_one({"flow_id": flow_id, "version": version})
        if vdoc is None:
            raise FlowNotFound(f"flow {flow_id!r} has no version {version}")
        return self._remember((await self._from_versions(company_id, [vdoc]))[0])

    async def list_flows(
        self,
        company_id: str,
        *,
        skip: int = 0,
        limit: int = 25,
        name_prefix: str | None = None,
        group: str | None = None,
        tag: str | None = None,
        enabled: bool | None = None,
    ) -> tuple[list[Flow], int]:
        """One page, newest change first, and the total. ``name_prefix`` keeps the flows
        whose name starts with it (a range on the indexed name, so case counts); ``group``
        the flows of that group, ``tag`` those tagged so, ``enabled`` the enabled (True) or
        disabled (False) ones. Group, tag and enabled are read from the company's flows
        (its `(company_id, updated_at)` index walk), not indexed: a company has thousands
        of flows, not millions."""
        flt: dict[str, Any] = {"deleted": {"$ne": True}}
        if name_prefix:
            # Every name starting with the prefix sorts between it and it + the highest
            # code point: one index range, no scan.
            flt["name"] = {"$gte": name_prefix, "$lt": name_prefix + "\U0010ffff"}
        if group:
            flt["definition.group"] = group
        if tag:
            flt["definition.tags"] = tag  # an array: matches when one of its items is `tag`
        if enabled is not None:  # flows stored before the switch existed are enabled
            flt["definition.enabled"] = False if not enabled else {"$ne": False}
        coll = self._flows(company_id)
        docs = await coll.find(flt, sort=[("updated_at", -1)], skip=skip, limit=limit)
        total = await coll.count(flt)
        return [flow_from_doc(dict(d, flow_id=d["_id"])) for d in docs], total

    async def names(
        self, company_id: str, *, limit: int = 100
    ) -> tuple[builtins.list[tuple[str, str]], bool]:
        """The ``limit`` most recently changed flows as (id, name), and whether there are
        more: for pickers. Read without parsing a definition or counting the company's
        flows (a count reads every flow document to skip the deleted ones)."""
        docs = await self._flows(company_id).find(
            {"deleted": {"$ne": True}},
            sort=[("updated_at", -1)],
            limit=limit + 1,
            projection={"name": 1},
        )
        return [(d["_id"], d["name"]) for d in docs[:limit]], len(docs) > limit

    async def names_of(self, company_id: str, flow_ids: builtins.list[str]) -> dict[str, str]:
        """The current names of these flows, deleted ones included (their plays remain), in
        one query; an id that never was a flow is absent."""
        if not flow_ids:
            return {}
        docs = await self._flows(company_id).find(
            {"_id": {"$in": sorted(set(flow_ids))}}, projection={"name": 1}
        )
        return {d["_id"]: d["name"] for d in docs}

    async def versions(self, company_id: str, flow_id: str) -> builtins.list[Flow]:
        docs = await self._versions(company_id).find({"flow_id": flow_id}, sort=[("version", -1)])
        if not docs:
            raise FlowNotFound(f"flow {flow_id!r} not found")
        return await self._from_versions(company_id, docs)

    async def version_times(
        self, company_id: str, flow_id: str, *, skip: int = 0, limit: int = 25
    ) -> tuple[builtins.list[tuple[int, float]], int]:
        """One page of a flow's versions, newest first, as (version, saved at), and how many
        there are: read from the index, without the definitions."""
        coll = self._versions(company_id)
        flt = {"flow_id": flow_id}
        docs = await coll.find(
            flt,
            sort=[("version", -1)],
            skip=skip,
            limit=limit,
            projection={"version": 1, "created_at": 1},
        )
        total = await coll.count(flt)
        if not total:
            raise FlowNotFound(f"flow {flow_id!r} not found")
        return [(int(d["version"]), float(d["created_at"])) for d in docs], total

    async def delete(self, company_id: str, flow_id: str) -> None:
        """Remove a flow from listings; its versions stay for the plays that pinned them."""
        self._heads.pop((company_id, flow_id), None)
        res = await self._flows(company_id).update_one(
            {"_id": flow_id, "deleted": {"$ne": True}},
            {"$set": {"deleted": True, "updated_at": time.time()}},
        )
        if not res.matched_count:
            raise FlowNotFound(f"flow {flow_id!r} not found")
