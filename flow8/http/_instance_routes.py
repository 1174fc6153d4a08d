"""``GET /api/instances``: the flow8 processes serving this installation (every worker of
every host sharing the store), from the instance registry (``flow8.services.instances``).

Hosts, pids and versions are the installation's, not a company's: owners and admins may read
them, as they may read the actor tree."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs

from flow8.services.identity import Action
from flow8.services.instances import InstanceInfo, InstanceRegistry

from ._api import Req, Routes
from ._context import app
from .exceptions import NotFound

routes = Routes("instances", "instances")


@attrs.frozen
class InstanceOut:
    id: str
    index: int  # picks the channel port block; the workers of one serve share it
    group: str  # the workers of one `flow8 serve --workers N`
    worker: int | None  # 1..N; null for a plain `flow8 serve`
    host: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age_seconds: float
    current: bool  # the instance that answered this request

    @classmethod
    def of(cls, i: InstanceInfo, now: datetime, current: str) -> InstanceOut:
        return cls(
            id=i.id,
            index=i.index,
            group=i.group,
            worker=i.worker,
            host=i.host,
            pid=i.pid,
            version=i.version,
            started_at=i.started_at,
            heartbeat_at=i.heartbeat_at,
            heartbeat_age_seconds=round(i.heartbeat_age(now), 3),
            current=i.id == current,
        )


@attrs.frozen
class InstanceList:
    items: list[InstanceOut]


def _registry() -> InstanceRegistry:
    registry = app().deps.instances
    if registry is None:
        raise NotFound("the instance registry is not available on this server")
    return registry


@routes.route(
    "GET",
    "/api/instances",
    action=Action.ADMIN_READ,
    summary="The live flow8 instances sharing this store: index, worker, host, pid, version "
    "and heartbeat",
    response=InstanceList,
    errors=(404,),  # a server built without the registry (an app embedded in a test or tool)
)
async def list_instances(req: Req) -> InstanceList:
    registry = _registry()
    now = datetime.now(UTC)
    live = await registry.live()
    return InstanceList([InstanceOut.of(i, now, registry.instance_id) for i in live])
