"""Child and supervisor specs: immutable descriptions of what to run and how to restart it."""

from __future__ import annotations

import enum
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs
import trio

from .exceptions import SpecError

if TYPE_CHECKING:
    from ._actor import Actor


class Restart(enum.Enum):
    """When a child that ended is started again (OTP restart types)."""

    PERMANENT = "permanent"  # always
    TRANSIENT = "transient"  # only after an abnormal exit (an exception)
    TEMPORARY = "temporary"  # never, not even when a sibling's failure stopped it


class Strategy(enum.Enum):
    """What a static supervisor restarts when one child fails."""

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


class ChildKind(enum.Enum):
    """OTP's child type: supervisors get an infinite shutdown timeout by default."""

    WORKER = "worker"
    SUPERVISOR = "supervisor"


TaskFunction: TypeAlias = Callable[[trio.TaskStatus[Any]], Awaitable[object]]
ActorFactory: TypeAlias = Callable[[], "Actor[Any, Any]"]

DEFAULT_SHUTDOWN = 5.0
DEFAULT_CAPACITY = 64


def _check_id(value: str, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise SpecError(f"{what} must be a non-empty string, got {value!r}")
    if "/" in value:
        raise SpecError(f"{what} {value!r} must not contain '/' (it separates tree paths)")


def _positive_int(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SpecError(f"{attribute.name} must be an integer >= 1, got {value!r}")


@attrs.frozen
class ActorStart:
    """Start an actor built by ``factory`` reading a mailbox of ``capacity`` messages."""

    factory: ActorFactory
    capacity: int = attrs.field(default=DEFAULT_CAPACITY, validator=_positive_int)


@attrs.frozen
class TaskStart:
    """Start a plain long-running task ``async def run(task_status)``."""

    run: TaskFunction


def _as_children(children: Sequence[ChildSpec] | object) -> tuple[ChildSpec, ...]:
    if isinstance(children, str | bytes) or not isinstance(children, Sequence):
        raise SpecError(f"supervisor children must be a sequence of ChildSpec, got {children!r}")
    return tuple(children)


@attrs.frozen
class SupervisorSpec:
    """A static supervisor: its children start in order and stop in reverse order."""

    children: tuple[ChildSpec, ...] = attrs.field(converter=_as_children)
    strategy: Strategy = Strategy.ONE_FOR_ONE
    intensity: int = 1
    period: float = 5.0

    def __attrs_post_init__(self) -> None:
        _check_intensity(self.intensity, self.period)
        seen: set[str] = set()
        for child in self.children:
            if not isinstance(child, ChildSpec):
                raise SpecError(f"supervisor children must be ChildSpec, got {child!r}")
            if child.id in seen:
                raise SpecError(f"duplicate child id {child.id!r} in one supervisor")
            seen.add(child.id)


@attrs.frozen
class DynamicSupervisorSpec:
    """A dynamic (simple_one_for_one) supervisor: children are added on demand."""

    max_children: int | None = None
    intensity: int = 1
    period: float = 5.0

    def __attrs_post_init__(self) -> None:
        _check_intensity(self.intensity, self.period)
        if self.max_children is not None and (
            not isinstance(self.max_children, int) or self.max_children < 1
        ):
            raise SpecError(f"max_children must be None or >= 1, got {self.max_children!r}")


def _check_intensity(intensity: int, period: float) -> None:
    if not isinstance(intensity, int) or isinstance(intensity, bool) or intensity < 0:
        raise SpecError(f"intensity must be an integer >= 0, got {intensity!r}")
    if not isinstance(period, int | float) or not period > 0 or math.isinf(period):
        raise SpecError(f"period must be a finite number of seconds > 0, got {period!r}")


Start: TypeAlias = ActorStart | TaskStart | SupervisorSpec | DynamicSupervisorSpec
_START_TYPES = (ActorStart, TaskStart, SupervisorSpec, DynamicSupervisorSpec)


@attrs.frozen
class ChildSpec:
    """One child of a supervisor (OTP child spec).

    ``shutdown`` is how long a polite stop may take before the child is cancelled; ``None``
    means wait for as long as it takes (the default for supervisors, whose own children are
    time bounded). ``name`` registers the child's ref in the runtime registry while it lives.
    """

    id: str
    start: Start
    restart: Restart = Restart.PERMANENT
    shutdown: float | None = attrs.field()
    name: str | None = None
    # Extra statistics of the child, called when the tree is rendered (shown as ``info``).
    info: Callable[[], Mapping[str, Any]] | None = None

    @shutdown.default
    def _default_shutdown(self) -> float | None:
        return None if isinstance(self.start, SupervisorSpec | DynamicSupervisorSpec) else 5.0

    def __attrs_post_init__(self) -> None:
        _check_id(self.id, "child id")
        if not isinstance(self.start, _START_TYPES):
            raise SpecError(
                f"child {self.id!r}: start must be ActorStart, TaskStart, SupervisorSpec or "
                f"DynamicSupervisorSpec, got {type(self.start).__name__}"
            )
        if not isinstance(self.restart, Restart):
            raise SpecError(f"child {self.id!r}: restart must be a Restart, got {self.restart!r}")
        if self.shutdown is not None and (
            not isinstance(self.shutdown, int | float) or self.shutdown < 0
        ):
            raise SpecError(
                f"child {self.id!r}: shutdown must be None or seconds >= 0, got {self.shutdown!r}"
            )
        if self.name is not None:
            _check_id(self.name, f"child {self.id!r}: registered name")

    @property
    def kind(self) -> ChildKind:
        if isinstance(self.start, SupervisorSpec | DynamicSupervisorSpec):
            return ChildKind.SUPERVISOR
        return ChildKind.WORKER


def actor(
    id: str,
    factory: ActorFactory,
    *,
    capacity: int = DEFAULT_CAPACITY,
    restart: Restart = Restart.PERMANENT,
    shutdown: float | None = DEFAULT_SHUTDOWN,
    name: str | None = None,
) -> ChildSpec:
    """Spec for an actor child: ``factory()`` builds a fresh actor on every (re)start."""
    return ChildSpec(id, ActorStart(factory, capacity), restart, shutdown, name)


def task(
    id: str,
    run: TaskFunction,
    *,
    restart: Restart = Restart.PERMANENT,
    shutdown: float | None = DEFAULT_SHUTDOWN,
    name: str | None = None,
    info: Callable[[], Mapping[str, Any]] | None = None,
) -> ChildSpec:
    """Spec for a plain task child ``async def run(task_status)`` (e.g. an HTTP server).
    ``info`` returns extra statistics shown with the child's node in the tree."""
    return ChildSpec(id, TaskStart(run), restart, shutdown, name, info)


def supervisor(
    id: str,
    children: Sequence[ChildSpec],
    *,
    strategy: Strategy = Strategy.ONE_FOR_ONE,
    intensity: int = 1,
    period: float = 5.0,
    restart: Restart = Restart.PERMANENT,
    shutdown: float | None = None,
    name: str | None = None,
) -> ChildSpec:
    """Spec for a nested static supervisor."""
    spec = SupervisorSpec(tuple(children), strategy, intensity, period)
    return ChildSpec(id, spec, restart, shutdown, name)


def dynamic_supervisor(
    id: str,
    *,
    max_children: int | None = None,
    intensity: int = 1,
    period: float = 5.0,
    restart: Restart = Restart.PERMANENT,
    shutdown: float | None = None,
    name: str | None = None,
) -> ChildSpec:
    """Spec for a dynamic supervisor whose children are added with ``start_child``."""
    spec = DynamicSupervisorSpec(max_children, intensity, period)
    return ChildSpec(id, spec, restart, shutdown, name)
