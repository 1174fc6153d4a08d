"""Statistics snapshots of actors, tasks and supervisors, and their JSON rendering."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from ._spec import Restart


class NodeKind(enum.Enum):
    ACTOR = "actor"
    TASK = "task"
    SUPERVISOR = "supervisor"
    DYNAMIC_SUPERVISOR = "dynamic_supervisor"


class State(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@attrs.frozen
class Stats:
    """A point-in-time view of one node of the supervision tree (and its subtree).

    ``restarts`` counts how many times this node was started again by its supervisor.
    ``messages_handled`` and the mailbox belong to the slot, so they survive restarts.
    ``child_count`` is the number of children even when ``children`` lists fewer (a limit).
    """

    name: str
    path: str
    kind: NodeKind
    strategy: str | None
    state: State
    restart: Restart
    mailbox_depth: int
    mailbox_capacity: int
    messages_handled: int
    restarts: int
    started_at: str | None
    uptime_seconds: float | None
    registered_name: str | None
    max_children: int | None
    child_count: int = 0
    children: tuple[Stats, ...] = ()
    info: Mapping[str, Any] | None = None  # the child's own statistics (ChildSpec.info)

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready dict served at GET /admin/actors. Keys are camelCase and stable."""
        return {
            "name": self.name,
            "path": self.path,
            "kind": self.kind.value,
            "strategy": self.strategy,
            "state": self.state.value,
            "restart": self.restart.value,
            "restarts": self.restarts,
            "mailbox": {"depth": self.mailbox_depth, "capacity": self.mailbox_capacity},
            "messagesHandled": self.messages_handled,
            "startedAt": self.started_at,
            "uptimeSeconds": self.uptime_seconds,
            "registeredName": self.registered_name,
            "maxChildren": self.max_children,
            "childCount": self.child_count,
            "children": [child.to_json() for child in self.children],
            **({"info": dict(self.info)} if self.info is not None else {}),
        }
