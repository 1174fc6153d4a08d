"""A generic OTP-style actor runtime on Trio. Never imports flow8.

Pieces: actors with bounded mailboxes (``Actor``, ``ActorRef``), child specs (``actor``,
``task``, ``supervisor``, ``dynamic_supervisor``), static supervisors with one_for_one /
one_for_all / rest_for_one and restart intensity, a dynamic supervisor with a cap, a name
registry, statistics snapshots and the runtime entry point ``open_runtime``.
See README.md for usage.
"""

from ._actor import Actor, ActorContext
from ._refs import ActorRef, DynamicSupervisorRef, Ref, SupervisorRef, TaskRef
from ._registry import Registry
from ._runtime import Runtime, open_runtime
from ._spec import (
    ActorStart,
    ChildKind,
    ChildSpec,
    DynamicSupervisorSpec,
    Restart,
    Strategy,
    SupervisorSpec,
    TaskStart,
    actor,
    dynamic_supervisor,
    supervisor,
    task,
)
from ._stats import NodeKind, State, Stats
from ._task import stop_requested
from .exceptions import (
    ActorError,
    ActorNotRunning,
    ActorStopped,
    CallFailed,
    CallTimeout,
    ChildNotFound,
    ChildStartFailed,
    DuplicateChild,
    MailboxFull,
    NameNotFound,
    NameTaken,
    RegistryError,
    RuntimeFailed,
    SpecError,
    SupervisorError,
    SupervisorFailed,
    TooManyChildren,
    describe,
    leaves,
)

__all__ = [
    "Actor",
    "ActorContext",
    "ActorError",
    "ActorNotRunning",
    "ActorRef",
    "ActorStart",
    "ActorStopped",
    "CallFailed",
    "CallTimeout",
    "ChildKind",
    "ChildNotFound",
    "ChildSpec",
    "ChildStartFailed",
    "DuplicateChild",
    "DynamicSupervisorRef",
    "DynamicSupervisorSpec",
    "MailboxFull",
    "NameNotFound",
    "NameTaken",
    "NodeKind",
    "Ref",
    "Registry",
    "RegistryError",
    "Restart",
    "Runtime",
    "RuntimeFailed",
    "SpecError",
    "State",
    "Stats",
    "Strategy",
    "SupervisorError",
    "SupervisorFailed",
    "SupervisorRef",
    "SupervisorSpec",
    "TaskRef",
    "TaskStart",
    "TooManyChildren",
    "actor",
    "describe",
    "dynamic_supervisor",
    "leaves",
    "open_runtime",
    "stop_requested",
    "supervisor",
    "task",
]
