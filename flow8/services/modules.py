"""The module catalog: every ``appId`` a flowlet may name, with its schemas (``GET
/api/modules``, ``flow8 modules list``)."""

from __future__ import annotations

import builtins
from typing import Any

import attrs

from flow8.modules import ModuleRegistry, default_registry


@attrs.frozen
class ModuleCatalog:
    """The modules of ``registry`` (the engine's, so that the catalog lists what flows may
    use; the built-in modules by default)."""

    registry: ModuleRegistry = attrs.field(factory=default_registry)

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every module's entry (``appId``, ``category``, ``description``, ``idempotent``,
        ``argsSchema``, ``outputSchema``), sorted by category then appId."""
        return self.registry.catalog()

    def describe(self, app_id: str) -> dict[str, Any] | None:
        """The entry of ``app_id``, or None when there is no such module."""
        spec = self.registry.find(app_id)
        return None if spec is None else spec.describe()


def module_catalog() -> list[dict[str, Any]]:
    """The built-in modules' entries (what ``flow8 modules list`` prints)."""
    return ModuleCatalog().list()
