"""The channels service: a company's channels and their routes (tenant collection
``channels``), and the ports they listen on (system collection ``channel_ports``).

A channel's bearer token and HMAC secret are kept in the collection's secret field
``secrets``, which the store encrypts; answers and audit entries only name them.

Ports: an http, ws or tcp channel gets the lowest free port of this instance's block
(``CHANNEL_PORT_RANGE`` for instance index 1, the next hundred ports for index 2, ...: see
``flow8.services.instances.channel_block``), and is served by the instance that holds the
block's index (:meth:`listeners`). A port is claimed by inserting ``{_id: "<port>"}`` into
``channel_ports`` first: the unique ``_id`` makes the claim race-safe across processes that
share the database (the loser of a race moves on to the next port). The claim is released
when the channel is deleted (or when its creation fails); a claim left by a process that died
between claiming and storing its channel is reclaimed when the block is otherwise full.

Every change calls ``on_change(company_id, channel_id)`` so this instance's channel
supervisor restarts, starts or stops that channel's listener at once; ``rev`` grows with
every change, and a write only lands on the revision it was based on (concurrent route edits
never lose one another).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from flow8.config import PortRange
from flow8.services.flows import FlowNotFound, FlowRepository
from flow8.store import Collection, DuplicateKey, Store, new_id

from ._checks import (
    check_auth,
    check_channel,
    check_route,
    merge_hmac,
    route_pattern,
)
from ._models import AuthMode, Channel, ChannelKind, HmacSettings, HmacStyle, Route
from .exceptions import (
    ChannelConflict,
    ChannelNameTaken,
    ChannelNotFound,
    InvalidChannel,
    PortsExhausted,
    Problem,
    RouteNotFound,
    RouteTaken,
)

COLLECTION = "channels"
PORTS = "channel_ports"
ROUTES_MAX = 200
_LIST_LIMIT = 10_000
_UPDATE_ATTEMPTS = 8
# A claim this old whose channel does not exist was left by a process that died in between.
_ORPHAN_AGE = timedelta(seconds=60)


def utcnow() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _no_change(company_id: str, channel_id: str) -> None:
    return None


def channel_from_doc(doc: Mapping[str, Any]) -> Channel:
    """A stored channel document (secrets decrypted by the store) as a :class:`Channel`."""
    secrets = doc.get("secrets") or {}
    hmac_doc = doc.get("hmac")
    hmac = None
    if hmac_doc is not None:
        hmac = HmacSettings(
            header=hmac_doc.get("header") or "",
            algorithm=hmac_doc.get("algorithm") or "sha256",
            prefix=hmac_doc.get("prefix") or "",
            style=HmacStyle(hmac_doc.get("style") or "plain"),
            secret=secrets.get("hmac_secret") or "",
        )
    return Channel(
        id=doc["_id"],
        company_id=doc["company_id"],
        name=doc["name"],
        kind=ChannelKind(doc["kind"]),
        auth_mode=AuthMode(doc["auth_mode"]),
        enabled=bool(doc.get("enabled", True)),
        port=doc.get("port"),
        routes=tuple(Route.from_doc(r) for r in doc.get("routes") or ()),
        hmac=hmac,
        auth_token=secrets.get("auth_token"),
        max_connections=int(doc.get("max_connections") or 100),
        rate_per_second=float(doc.get("rate_per_second") or 50.0),
        created_at=doc.get("created_at"),
        updated_at=doc.get("updated_at"),
        rev=int(doc.get("rev") or 1),
    )


def _auth_fields(
    mode: AuthMode,
    token: str | None,
    hmac: Mapping[str, Any] | None,
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The stored ``hmac`` (plain part) and ``secrets`` for a mode: what the mode does not
    use is dropped (a channel switched to public keeps no token)."""
    secrets: dict[str, Any] = {}
    plain = None
    if mode is AuthMode.HEADER_TOKEN and token:
        secrets["auth_token"] = token
    if mode is AuthMode.HMAC and hmac is not None:
        plain = {
            "header": hmac.get("header") or "",
            "algorithm": hmac.get("algorithm") or "sha256",
            "prefix": hmac.get("prefix") or "",
            "style": HmacStyle(hmac.get("style") or "plain").value,
        }
        if hmac.get("secret"):
            secrets["hmac_secret"] = hmac["secret"]
    return plain, secrets


def _stored_hmac(channel: Channel) -> dict[str, Any] | None:
    if channel.hmac is None:
        return None
    return {**channel.hmac.summary(), "secret": channel.hmac.secret or None}


@attrs.define
class ChannelService:
    """Every method but :meth:`listeners` is scoped to ``company_id``: another company's
    channel is not found."""

    store: Store
    flows: FlowRepository
    port_range: PortRange
    # This instance's block as it stands now (its index can change at a heartbeat);
    # None: ``port_range`` itself (one instance, index 1).
    block_of: Callable[[], PortRange] | None = attrs.field(default=None, kw_only=True)
    max_connections: int = attrs.field(default=100, kw_only=True)
    rate_per_second: float = attrs.field(default=50.0, kw_only=True)
    on_change: Callable[[str, str], None] = attrs.field(default=_no_change, kw_only=True)
    clock: Callable[[], datetime] = attrs.field(default=utcnow, kw_only=True)

    def _coll(self, company_id: str) -> Collection:
        return self.store.tenant(company_id).collection(COLLECTION)

    def _ports(self) -> Collection:
        return self.store.system.collection(PORTS)

    @property
    def block(self) -> PortRange:
        """The ports this instance gives new channels and listens on."""
        return self.block_of() if self.block_of is not None else self.port_range

    # -- ports ------------------------------------------------------------------------------

    async def _claim_port(self, company_id: str, channel_id: str) -> int:
        for sweep in (False, True):
            if sweep and not await self._reclaim_orphans():
                break
            claims = await self._ports().find({}, projection={"_id": 1}, limit=_LIST_LIMIT)
            taken = {c["_id"] for c in claims}
            block = self.block
            for port in range(block.first, block.last + 1):
                if str(port) in taken:
                    continue
                claim = {
                    "_id": str(port),
                    "company_id": company_id,
                    "channel_id": channel_id,
                    "claimed_at": self.clock(),
                }
                try:
                    await self._ports().insert_one(claim)
                except DuplicateKey:
                    continue  # another process claimed it in between: try the next one
                return port
        raise PortsExhausted(
            f"every port of this instance's channel block ({self.block}, "
            f"from CHANNEL_PORT_RANGE) is taken by a channel: delete a channel or widen "
            f"CHANNEL_PORT_RANGE"
        )

    async def _release_port(self, port: int | None, channel_id: str) -> None:
        if port is not None:
            await self._ports().delete_one({"_id": str(port), "channel_id": channel_id})

    async def _reclaim_orphans(self) -> bool:
        """Release the claims of the block whose channel was never stored (the claiming
        process died in between); answers whether any was released."""
        first, last = self.block.first, self.block.last
        cutoff = self.clock() - _ORPHAN_AGE
        claims = await self._ports().find({"claimed_at": {"$lt": cutoff}}, limit=_LIST_LIMIT)
        released = False
        for claim in claims:
            if not first <= int(claim["_id"]) <= last:
                continue
            owner = self.store.tenant(claim["company_id"]).collection(COLLECTION)
            if await owner.find_one({"_id": claim["channel_id"]}, projection={"_id": 1}) is None:
                gone = await self._ports().delete_one(
                    {"_id": claim["_id"], "channel_id": claim["channel_id"]}
                )
                released = released or gone > 0
        return released

    # -- channels ---------------------------------------------------------------------------

    async def create(self, company_id: str, data: Mapping[str, Any]) -> Channel:
        fields = check_channel(data)
        hmac = merge_hmac(None, fields["hmac"]) if fields.get("hmac") else None
        check_auth(fields["auth_mode"], fields.get("auth_token"), hmac, data)
        plain_hmac, secrets = _auth_fields(fields["auth_mode"], fields.get("auth_token"), hmac)
        kind: ChannelKind = fields["kind"]
        coll = self._coll(company_id)
        if await coll.find_one({"name": fields["name"]}, projection={"_id": 1}) is not None:
            raise self._name_taken(fields["name"])
        channel_id = new_id()
        port = await self._claim_port(company_id, channel_id) if kind.listens else None
        now = self.clock()
        doc: dict[str, Any] = {
            "_id": channel_id,
            "name": fields["name"],
            "kind": kind.value,
            "auth_mode": fields["auth_mode"].value,
            "enabled": fields["enabled"],
            "port": port,
            "hmac": plain_hmac,
            "secrets": secrets,
            "max_connections": fields.get("max_connections", self.max_connections),
            "rate_per_second": fields.get("rate_per_second", self.rate_per_second),
            "routes": [],
            "created_at": now,
            "updated_at": now,
            "rev": 1,
        }
        try:
            await coll.insert_one(doc)
        except DuplicateKey:
            await self._release_port(port, channel_id)
            raise self._name_taken(fields["name"]) from None
        except BaseException:
            await self._release_port(port, channel_id)
            raise
        doc["company_id"] = company_id
        self.on_change(company_id, channel_id)
        return channel_from_doc(doc)

    @staticmethod
    def _name_taken(name: str) -> ChannelNameTaken:
        return ChannelNameTaken(f"name: a channel named {name!r} exists in this company")

    async def get(self, company_id: str, channel_id: str) -> Channel:
        doc = await self._coll(company_id).find_one({"_id": channel_id})
        if doc is None:
            raise ChannelNotFound("channel not found")
        return channel_from_doc(doc)

    async def list(self, company_id: str) -> builtins.list[Channel]:
        docs = await self._coll(company_id).find(
            {}, sort=[("name", 1), ("_id", 1)], limit=_LIST_LIMIT
        )
        return [channel_from_doc(d) for d in docs]

    async def update(
        self, company_id: str, channel_id: str, data: Mapping[str, Any]
    ) -> tuple[Channel, Channel]:
        """Change the fields given; (before, after). An absent field keeps its value; a null
        ``authToken`` or ``hmac.secret`` removes it; ``kind`` never changes (its port, or
        lack of one, goes with it)."""
        change = check_channel(data, partial=True)
        for _ in range(_UPDATE_ATTEMPTS):
            before = await self.get(company_id, channel_id)
            if "kind" in change and change.pop("kind") is not before.kind:
                raise InvalidChannel(
                    [
                        Problem(
                            "kind",
                            f"cannot change (this is a {before.kind.value} channel): "
                            "create a new channel of the other kind",
                        )
                    ]
                )
            mode: AuthMode = change.get("auth_mode", before.auth_mode)
            token = change.get("auth_token", before.auth_token)
            hmac_change = change.get("hmac", {})
            stored_hmac = _stored_hmac(before)
            if "hmac" in change and change["hmac"] is None:
                hmac = None
            elif mode is AuthMode.HMAC and (stored_hmac is not None or hmac_change):
                hmac = merge_hmac(stored_hmac, hmac_change)
            else:
                hmac = None
            check_auth(mode, token, hmac, data)
            plain_hmac, secrets = _auth_fields(mode, token, hmac)
            update: dict[str, Any] = {
                k: change[k]
                for k in ("name", "enabled", "max_connections", "rate_per_second")
                if k in change
            }
            update.update(auth_mode=mode.value, hmac=plain_hmac, secrets=secrets)
            after_would = channel_from_doc(
                {
                    **_doc_of(before),
                    **update,
                    "_id": before.id,
                    "company_id": company_id,
                }
            )
            if _same(before, after_would):
                return before, before
            update["updated_at"] = self.clock()
            try:
                result = await self._coll(company_id).update_one(
                    {"_id": channel_id, "rev": before.rev},
                    {"$set": update, "$inc": {"rev": 1}},
                )
            except DuplicateKey:
                raise self._name_taken(update["name"]) from None
            if result.matched_count:
                self.on_change(company_id, channel_id)
                return before, await self.get(company_id, channel_id)
        raise ChannelConflict("the channel is being changed by others at the same time; retry")

    async def delete(self, company_id: str, channel_id: str) -> Channel:
        gone = await self.get(company_id, channel_id)
        if not await self._coll(company_id).delete_one({"_id": channel_id}):
            raise ChannelNotFound("channel not found")
        await self._release_port(gone.port, channel_id)
        self.on_change(company_id, channel_id)
        return gone

    # -- routes -----------------------------------------------------------------------------

    async def routes(self, company_id: str, channel_id: str) -> builtins.list[Route]:
        return list((await self.get(company_id, channel_id)).routes)

    async def add_route(
        self, company_id: str, channel_id: str, data: Mapping[str, Any]
    ) -> tuple[Channel, Route]:
        """Add a route; answers (the channel after, the route)."""
        channel = await self.get(company_id, channel_id)
        fields = check_route(data, channel.kind)
        await self._check_targets(company_id, fields["target_flow_ids"])
        route = Route.from_doc({"id": new_id(), **fields})
        for _ in range(_UPDATE_ATTEMPTS):
            if len(channel.routes) >= ROUTES_MAX:
                raise InvalidChannel(
                    [Problem("(body)", f"a channel has at most {ROUTES_MAX} routes")]
                )
            await self._check_unique(company_id, channel, route)
            after = await self._write_routes(company_id, channel, [*channel.routes, route])
            if after is not None:
                return after, route
            channel = await self.get(company_id, channel_id)
        raise ChannelConflict("the channel is being changed by others at the same time; retry")

    async def update_route(
        self, company_id: str, channel_id: str, route_id: str, data: Mapping[str, Any]
    ) -> tuple[Route, Route]:
        """Change the route's fields given (absent ones keep); (before, after)."""
        channel = await self.get(company_id, channel_id)
        change = check_route(data, channel.kind, partial=True)
        if "target_flow_ids" in change:
            await self._check_targets(company_id, change["target_flow_ids"])
        for _ in range(_UPDATE_ATTEMPTS):
            before = _route(channel, route_id)
            after = Route.from_doc({**before.to_doc(), **change, "id": before.id})
            if after == before:
                return before, before
            await self._check_unique(company_id, channel, after)
            routes = [after if r.id == route_id else r for r in channel.routes]
            if await self._write_routes(company_id, channel, routes) is not None:
                return before, after
            channel = await self.get(company_id, channel_id)
        raise ChannelConflict("the channel is being changed by others at the same time; retry")

    async def delete_route(self, company_id: str, channel_id: str, route_id: str) -> Route:
        for _ in range(_UPDATE_ATTEMPTS):
            channel = await self.get(company_id, channel_id)
            gone = _route(channel, route_id)
            routes = [r for r in channel.routes if r.id != route_id]
            if await self._write_routes(company_id, channel, routes) is not None:
                return gone
        raise ChannelConflict("the channel is being changed by others at the same time; retry")

    async def forget_flow(
        self, company_id: str, flow_id: str
    ) -> builtins.list[tuple[Channel, Route, Route | None]]:
        """A flow is being deleted: take it out of every route that targets it, and delete
        the routes left with no target (a request to them could only fail). Answers
        (channel, route before, route after or None when deleted), for the audit trail."""
        changed: builtins.list[tuple[Channel, Route, Route | None]] = []
        for listed in await self.list(company_id):
            if not any(flow_id in r.target_flow_ids for r in listed.routes):
                continue
            for _ in range(_UPDATE_ATTEMPTS):
                channel = await self.get(company_id, listed.id)
                kept: builtins.list[Route] = []
                these: builtins.list[tuple[Channel, Route, Route | None]] = []
                for route in channel.routes:
                    if flow_id not in route.target_flow_ids:
                        kept.append(route)
                        continue
                    targets = tuple(f for f in route.target_flow_ids if f != flow_id)
                    after = attrs.evolve(route, target_flow_ids=targets) if targets else None
                    if after is not None:
                        kept.append(after)
                    these.append((channel, route, after))
                if not these or await self._write_routes(company_id, channel, kept) is not None:
                    changed.extend(these)
                    break
            else:
                raise ChannelConflict(
                    "the channel is being changed by others at the same time; retry"
                )
        return changed

    async def _write_routes(
        self, company_id: str, channel: Channel, routes: builtins.list[Route]
    ) -> Channel | None:
        """Store ``routes`` if the channel is still at the revision read; None if it moved."""
        result = await self._coll(company_id).update_one(
            {"_id": channel.id, "rev": channel.rev},
            {
                "$set": {"routes": [r.to_doc() for r in routes], "updated_at": self.clock()},
                "$inc": {"rev": 1},
            },
        )
        if not result.matched_count:
            return None
        self.on_change(company_id, channel.id)
        return await self.get(company_id, channel.id)

    async def _check_targets(self, company_id: str, flow_ids: builtins.list[str]) -> None:
        problems = []
        for i, flow_id in enumerate(flow_ids):
            try:
                await self.flows.get(company_id, flow_id)
            except FlowNotFound:
                problems.append(Problem(f"targetFlowIds[{i}]", "is not a flow of this company"))
        if problems:
            raise InvalidChannel(problems)

    async def _check_unique(self, company_id: str, channel: Channel, route: Route) -> None:
        for other in channel.routes:
            if other.id == route.id:
                continue
            if other.name == route.name:
                raise RouteTaken("name", f"this channel has a route named {route.name!r}")
            if (
                channel.kind is ChannelKind.HTTP
                and other.http_method == route.http_method
                and route_pattern(other.path) == route_pattern(route.path)
            ):
                raise RouteTaken(
                    "path",
                    f"route {other.name!r} of this channel serves {other.http_method} {other.path}",
                )
        if route.tool_name is not None:
            for mcp, other in await self._company_tools(company_id):
                if other.id != route.id and other.tool_name == route.tool_name:
                    raise RouteTaken(
                        "toolName",
                        f"{route.tool_name!r} is already the tool of route {other.name!r} "
                        f"of channel {mcp.name!r}",
                    )

    async def _company_tools(self, company_id: str) -> builtins.list[tuple[Channel, Route]]:
        docs = await self._coll(company_id).find({"kind": ChannelKind.MCP.value}, limit=_LIST_LIMIT)
        return [(c, r) for c in map(channel_from_doc, docs) for r in c.routes if r.tool_name]

    # -- readers for the listeners and the MCP server ---------------------------------------

    async def listeners(self) -> builtins.list[Channel]:
        """Every enabled http, ws and tcp channel of every company (cross-tenant) whose port
        is in this instance's block: the channels this instance listens for."""
        block = self.block
        docs = await self.store.cross_tenant.collection(COLLECTION).find(
            {"enabled": True, "port": {"$gte": block.first, "$lte": block.last}},
            sort=[("_id", 1)],
            limit=_LIST_LIMIT,
        )
        found = (channel_from_doc(d) for d in docs)
        return [c for c in found if c.kind.listens and c.port is not None]

    async def mcp_routes(self, company_id: str) -> builtins.list[tuple[Channel, Route]]:
        """The routes of the company's enabled mcp channels: the MCP server's flow tools."""
        docs = await self._coll(company_id).find(
            {"kind": ChannelKind.MCP.value, "enabled": True},
            sort=[("name", 1), ("_id", 1)],
            limit=_LIST_LIMIT,
        )
        return [(c, r) for c in map(channel_from_doc, docs) for r in c.routes]


def _route(channel: Channel, route_id: str) -> Route:
    found = next((r for r in channel.routes if r.id == route_id), None)
    if found is None:
        raise RouteNotFound("route not found")
    return found


def _doc_of(channel: Channel) -> dict[str, Any]:
    plain, secrets = _auth_fields(channel.auth_mode, channel.auth_token, _stored_hmac(channel))
    return {
        "name": channel.name,
        "kind": channel.kind.value,
        "auth_mode": channel.auth_mode.value,
        "enabled": channel.enabled,
        "port": channel.port,
        "hmac": plain,
        "secrets": secrets,
        "max_connections": channel.max_connections,
        "rate_per_second": channel.rate_per_second,
        "routes": [r.to_doc() for r in channel.routes],
        "created_at": channel.created_at,
        "updated_at": channel.updated_at,
        "rev": channel.rev,
    }


def _same(a: Channel, b: Channel) -> bool:
    """Equal, secrets included (attrs equality compares every field)."""
    return a == b
