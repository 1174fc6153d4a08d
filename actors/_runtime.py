"""The runtime entry point: start the root supervisor, expose the tree, stop it in order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from ._refs import ActorRef, DynamicSupervisorRef, Ref, SupervisorRef
from ._registry import Registry
from ._slot import Env, Exit, ExitKind, Slot
from ._spec import ChildSpec, Restart, SupervisorSpec
from ._stats import Stats
from .exceptions import ChildNotFound, RuntimeFailed, SpecError


@attrs.define(eq=False)
class Runtime:
    """A running supervision tree. Obtain one with ``open_runtime``."""

    registry: Registry
    _root: Slot
    _cancel: trio.CancelScope | None = None
    _root_error: BaseException | None = None

    @property
    def root(self) -> SupervisorRef:
        ref = self._root.ref
        assert isinstance(ref, SupervisorRef)
        return ref

    def stats(self, limit: int | None = None) -> Stats:
        return self._root.snapshot(limit)

    def tree(self, limit: int | None = None) -> dict[str, Any]:
        """The whole tree as a JSON-ready dict (the body of GET /admin/actors).

        ``limit`` caps how many children each node lists (a dynamic supervisor may hold
        thousands); every node's ``childCount`` still gives the full number.
        """
        return self._root.snapshot(limit).to_json()

    def whereis(self, name: str) -> Ref | None:
        return self.registry.whereis(name)

    def ref(self, path: str) -> Ref:
        """The ref at ``path``: child ids joined by '/', with or without the root's id."""
        parts = [p for p in path.split("/") if p]
        if parts and parts[0] == self._root.id:
            parts = parts[1:]
        ref: Ref = self._root.ref
        for part in parts:
            if isinstance(ref, SupervisorRef | DynamicSupervisorRef):
                ref = ref.child(part)
            else:
                raise ChildNotFound(f"{ref.path!r} has no children (looking up {path!r})")
        return ref

    def actor(self, path: str) -> ActorRef[Any, Any]:
        ref = self.ref(path)
        if not isinstance(ref, ActorRef):
            raise ChildNotFound(f"{path!r} is a {type(ref).__name__}, not an actor")
        return ref

    def dynamic_supervisor(self, path: str) -> DynamicSupervisorRef:
        ref = self.ref(path)
        if not isinstance(ref, DynamicSupervisorRef):
            raise ChildNotFound(f"{path!r} is a {type(ref).__name__}, not a dynamic supervisor")
        return ref

    async def stop(self, *, timeout: float | None = None) -> None:
        """Stop the whole tree in reverse start order, each child within its shutdown timeout.

        With ``timeout``, whatever still runs after that many seconds is cancelled at once
        (a hard stop), so the call returns within about ``timeout`` seconds. Calling it again
        (e.g. after an earlier bounded wait gave up) is safe.
        """
        root = self._root
        incarnation = root.incarnation
        if incarnation is not None:
            if timeout is None:
                await root.stop()
            else:
                with trio.move_on_after(timeout):
                    await root.stop()
                incarnation.scope.cancel()
                await incarnation.done.wait()
                if root.incarnation is incarnation:
                    root.incarnation = None
        root.finalize()

    def _on_root_exit(self, exit: Exit) -> None:
        if exit.kind is ExitKind.ABNORMAL and self._root_error is None:
            self._root_error = exit.error
            if self._cancel is not None:
                self._cancel.cancel()


@asynccontextmanager
async def open_runtime(
    root: SupervisorSpec | ChildSpec, *, name: str = "root", shutdown: float | None = None
) -> AsyncIterator[Runtime]:
    """Start ``root`` (its children in order) and yield the running Runtime.

    Leaving the block stops the tree in reverse order within the configured timeouts. If the
    root supervisor fails (restart intensity exceeded) the block is cancelled and
    RuntimeFailed is raised, chained to the root's error; a root that fails to start raises
    RuntimeFailed chained to ChildStartFailed. An exception raised by the block propagates
    unchanged after the tree has stopped. ``shutdown`` bounds the stop at the end of the block
    (None: as long as the children's own timeouts take); it applies when ``root`` is a
    SupervisorSpec (a ChildSpec root carries its own ``shutdown``).
    """
    if isinstance(root, SupervisorSpec):
        root = ChildSpec(name, root, Restart.TEMPORARY, shutdown)
    elif not isinstance(root, ChildSpec) or not isinstance(root.start, SupervisorSpec):
        raise SpecError("open_runtime needs a SupervisorSpec (or a ChildSpec of one) as root")
    env = Env(Registry())
    runtime = Runtime(env.registry, Slot.create(root, root.id, env))
    start_error: Exception | None = None
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            runtime._cancel = nursery.cancel_scope
            try:
                await nursery.start(runtime._root.run, runtime._on_root_exit)
            except Exception as exc:
                start_error = exc
            if start_error is None:
                try:
                    yield runtime
                except Exception as exc:
                    body_error = exc
                except trio.Cancelled:
                    raise
                except BaseException as exc:
                    # KeyboardInterrupt and the like: tear down at once, re-raise unwrapped.
                    body_error = exc
                    nursery.cancel_scope.cancel()
                await runtime.stop(timeout=root.shutdown)
    finally:
        runtime._root.finalize()
    if start_error is not None:
        raise RuntimeFailed(f"root supervisor {root.id!r} failed to start: {start_error}") from (
            start_error
        )
    if runtime._root_error is not None:
        raise RuntimeFailed(
            f"root supervisor {root.id!r} failed: {runtime._root_error}"
        ) from runtime._root_error
    if body_error is not None:
        raise body_error
