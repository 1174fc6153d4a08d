"""The name registry: unique names for refs, released when their holder stops for good."""

from __future__ import annotations

import attrs

from ._refs import Ref
from .exceptions import ActorStopped, NameNotFound, NameTaken, SpecError


@attrs.define
class Registry:
    """``register`` / ``whereis`` / ``unregister`` with unique names.

    A name is released automatically when the node it points to stops for good; while the node
    is only restarting the name keeps pointing at its (still valid) ref.
    """

    _names: dict[str, Ref] = attrs.Factory(dict)
    _by_ref: dict[Ref, set[str]] = attrs.Factory(dict)

    def register(self, name: str, ref: Ref) -> None:
        """Bind ``name`` to ``ref``; NameTaken if another live ref holds it."""
        if not isinstance(name, str) or not name:
            raise SpecError(f"a registered name must be a non-empty string, got {name!r}")
        if not ref.alive:
            raise ActorStopped(f"cannot register {name!r}: {ref.path!r} has stopped")
        self.claim(name, ref)

    def claim(self, name: str, ref: Ref) -> None:
        holder = self._names.get(name)
        if holder is not None and holder is not ref and holder.alive:
            raise NameTaken(f"name {name!r} is already registered to {holder.path!r}")
        if holder is not None and holder is not ref:
            self._forget(holder, name)
        self._names[name] = ref
        self._by_ref.setdefault(ref, set()).add(name)

    def unregister(self, name: str) -> None:
        """Drop ``name``; NameNotFound if nobody holds it."""
        ref = self._names.pop(name, None)
        if ref is None:
            raise NameNotFound(f"no ref is registered as {name!r}")
        self._forget(ref, name)

    def whereis(self, name: str) -> Ref | None:
        """The ref registered as ``name``, or None."""
        ref = self._names.get(name)
        if ref is not None and not ref.alive:
            del self._names[name]
            self._forget(ref, name)
            return None
        return ref

    def lookup(self, name: str) -> Ref:
        """Like ``whereis`` but raising NameNotFound."""
        ref = self.whereis(name)
        if ref is None:
            raise NameNotFound(f"no ref is registered as {name!r}")
        return ref

    def names(self) -> list[str]:
        return sorted(name for name, ref in self._names.items() if ref.alive)

    def release(self, ref: Ref) -> None:
        """Forget every name bound to ``ref`` (it stopped for good)."""
        for name in self._by_ref.pop(ref, ()):
            if self._names.get(name) is ref:
                del self._names[name]

    def _forget(self, ref: Ref, name: str) -> None:
        names = self._by_ref.get(ref)
        if names is not None:
            names.discard(name)
            if not names:
                del self._by_ref[ref]
