"""The components service: a company's component configs (collection ``component_configs``)
and their resolution into live providers for the steps that use them.

A config's secret fields (``ProviderSpec.secret_fields``: passwords, keys) are kept in the
collection's secret field ``secrets``, which the store encrypts; the rest stays plain in
``config``, so listings decrypt nothing and answers name secret fields only.

Resolution (:meth:`ComponentService.resolve`): the step's choice (an id, or a name of that
kind), else the company's default of the kind, else the built-in default where one makes
sense (``request`` with the guard on, ``console``). Live providers are cached by
(company, id, rev): a changed config has a new ``rev``, so the next step opens the new one
(and the old one is closed). Which config answers a (company, kind, choice) is cached for
``resolution_ttl`` seconds and dropped at once when this instance changes a config of that
company; another instance's change is seen within the TTL.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import structlog

from flow8.components import (
    KINDS,
    ComponentError,
    ComponentHandle,
    Provider,
    ProviderCatalog,
    ProviderEnv,
    ProviderSpec,
)
from flow8.modules import ArgsValidator
from flow8.store import Collection, DuplicateKey, Store

from ._models import Component
from .exceptions import (
    ComponentConflict,
    ComponentNameTaken,
    ComponentNotFound,
    InvalidComponent,
    Problem,
)

log = structlog.get_logger("flow8.components")

COLLECTION = "component_configs"
NAME_MAX = 128
_UPDATE_ATTEMPTS = 5
_WITHOUT_SECRETS = {"secrets": 0}
_BUILTIN = "builtin"


def utcnow() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@attrs.frozen
class _Choice:
    """What a (company, kind, choice) resolved to: a stored config (id, rev) or nothing."""

    component_id: str | None
    rev: int
    at: float


@attrs.define
class ComponentService:
    """Every method is scoped to ``company_id``: another company's component is not found.

    ``env_for(company_id)`` is what the server lends a company's providers.
    """

    store: Store
    env_for: Callable[[str], ProviderEnv]
    catalog: ProviderCatalog = attrs.field(factory=ProviderCatalog.of)
    clock: Callable[[], datetime] = utcnow
    resolution_ttl: float = 2.0
    _validators: dict[tuple[str, str], ArgsValidator] = attrs.field(factory=dict, init=False)
    _live: dict[tuple[str, str], tuple[int, ComponentHandle]] = attrs.field(
        factory=dict, init=False
    )
    _choices: dict[tuple[str, str, str | None], _Choice] = attrs.field(factory=dict, init=False)

    def _configs(self, company_id: str) -> Collection:
        return self.store.tenant(company_id).collection(COLLECTION)

    # -- the catalog ------------------------------------------------------------------------

    def providers(self) -> builtins.list[dict[str, Any]]:
        """Every provider's entry: kind, name, config JSON Schema, secret fields."""
        return [s.describe() for s in self.catalog]

    def _spec(self, kind: Any, provider: Any) -> ProviderSpec:
        if kind not in KINDS:
            raise InvalidComponent([Problem("kind", f"must be one of: {', '.join(KINDS)}")])
        spec = self.catalog.find(kind, provider)
        if spec is None:
            known = ", ".join(self.catalog.providers(kind))
            raise InvalidComponent(
                [Problem("provider", f"{kind} components have the providers: {known}")]
            )
        return spec

    def _check_config(self, spec: ProviderSpec, config: Any) -> None:
        key = (spec.kind, spec.provider)
        validator = self._validators.get(key)
        if validator is None:
            validator = self._validators[key] = ArgsValidator(spec.config_schema)
        if not isinstance(config, Mapping):
            raise InvalidComponent([Problem("config", "must be an object")])
        problems = [
            Problem(f"config.{path}" if path else "config", _without_values(message))
            for path, message in validator.problems(config)
        ]
        if problems:
            raise InvalidComponent(problems)

    async def _try_open(
        self, spec: ProviderSpec, company_id: str, config: Mapping[str, Any]
    ) -> None:
        """Open the provider once with the new config (no connection is made), so a config
        that cannot work (a root outside the allowed ones, a missing library) is refused
        when saved rather than when a play needs it."""
        await spec.load()
        try:
            provider = spec.open(config, self.env_for(company_id))
        except ComponentError as e:
            raise InvalidComponent([Problem("config", e.detail)]) from None
        await provider.aclose()

    # -- CRUD -------------------------------------------------------------------------------

    async def create(self, company_id: str, body: Mapping[str, Any]) -> Component:
        name = _check_name(body.get("name"))
        spec = self._spec(body.get("kind"), body.get("provider"))
        config = body.get("config") or {}
        self._check_config(spec, config)
        await self._try_open(spec, company_id, config)
        is_default = bool(body.get("isDefault", False))
        now = self.clock()
        plain, secrets = _split(spec, config)
        doc: dict[str, Any] = {
            "name": name,
            "kind": spec.kind,
            "provider": spec.provider,
            "config": plain,
            "secrets": secrets,
            "secret_names": sorted(secrets),
            "is_default": is_default,
            "rev": 1,
            "created_at": now,
            "updated_at": now,
        }
        try:
            doc["_id"] = await self._configs(company_id).insert_one(doc)
        except DuplicateKey as e:
            raise ComponentNameTaken(f"a {spec.kind} component named {name!r} exists") from e
        if is_default:
            await self._only_default(company_id, spec.kind, doc["_id"])
        self._forget(company_id)
        return Component.from_doc(doc)

    async def get(self, company_id: str, component_id: str) -> Component:
        doc = await self._configs(company_id).find_one(
            {"_id": component_id}, projection=_WITHOUT_SECRETS
        )
        if doc is None:
            raise ComponentNotFound("component not found")
        return Component.from_doc(doc)

    async def list(self, company_id: str, *, kind: str | None = None) -> builtins.list[Component]:
        query: dict[str, Any] = {} if kind is None else {"kind": kind}
        docs = await self._configs(company_id).find(
            query, sort=[("kind", 1), ("name", 1)], limit=1000, projection=_WITHOUT_SECRETS
        )
        return [Component.from_doc(d) for d in docs]

    async def update(
        self, company_id: str, component_id: str, body: Mapping[str, Any]
    ) -> tuple[Component, Component]:
        """Rename, reconfigure or (un)set as default; (before, after). In ``config`` a value
        replaces that field, null removes it and an absent field keeps its value, so a client
        never resends a password it does not change. Kind and provider never change."""
        configs = self._configs(company_id)
        for _ in range(_UPDATE_ATTEMPTS):
            doc = await configs.find_one({"_id": component_id})
            if doc is None:
                raise ComponentNotFound("component not found")
            before = Component.from_doc(doc)
            spec = self._spec(doc["kind"], doc["provider"])
            for fixed in ("kind", "provider"):
                if fixed in body and body[fixed] != doc[fixed]:
                    raise InvalidComponent(
                        [Problem(fixed, "cannot change: create a new component")]
                    )
            stored = {**(doc.get("config") or {}), **(doc.get("secrets") or {})}
            patch = body.get("config")
            if patch is not None and not isinstance(patch, Mapping):
                raise InvalidComponent([Problem("config", "must be an object")])
            merged = dict(stored)
            for k, v in (patch or {}).items():
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
            self._check_config(spec, merged)
            sets: dict[str, Any] = {}
            if "name" in body and body["name"] != doc["name"]:
                sets["name"] = _check_name(body["name"])
            if merged != stored:
                await self._try_open(spec, company_id, merged)
                plain, secrets = _split(spec, merged)
                sets.update(config=plain, secrets=secrets, secret_names=sorted(secrets))
            if "isDefault" in body and bool(body["isDefault"]) != bool(doc.get("is_default")):
                sets["is_default"] = bool(body["isDefault"])
            if not sets:
                return before, before
            sets["updated_at"] = self.clock()
            try:
                result = await configs.update_one(
                    {"_id": component_id, "rev": doc.get("rev")},
                    {"$set": sets, "$inc": {"rev": 1}},
                )
            except DuplicateKey as e:
                raise ComponentNameTaken(
                    f"a {doc['kind']} component named {sets.get('name')!r} exists"
                ) from e
            if result.matched_count == 1:
                if sets.get("is_default"):
                    await self._only_default(company_id, doc["kind"], component_id)
                self._forget(company_id)
                after = Component.from_doc({**doc, **sets, "rev": int(doc.get("rev") or 1) + 1})
                return before, after
        raise ComponentConflict("the component kept changing concurrently; retry")

    async def delete(self, company_id: str, component_id: str) -> Component:
        configs = self._configs(company_id)
        doc = await configs.find_one({"_id": component_id}, projection=_WITHOUT_SECRETS)
        if doc is None or await configs.delete_one({"_id": component_id}) == 0:
            raise ComponentNotFound("component not found")
        self._forget(company_id)
        return Component.from_doc(doc)

    async def _only_default(self, company_id: str, kind: str, keep: str) -> None:
        await self._configs(company_id).update_many(
            {"kind": kind, "is_default": True, "_id": {"$ne": keep}},
            {"$set": {"is_default": False, "updated_at": self.clock()}, "$inc": {"rev": 1}},
        )

    # -- use ---------------------------------------------------------------------------------

    async def test(self, company_id: str, component_id: str) -> dict[str, Any]:
        """A real connectivity check: ``{ok, message, durationMs}``."""
        handle = await self.resolve(company_id, "", component_id, by_id_only=True)
        started = time.perf_counter()
        try:
            message = await handle.provider.check()
            ok = True
        except ComponentError as e:
            message, ok = str(e), False
        return {
            "ok": ok,
            "message": message,
            "durationMs": round((time.perf_counter() - started) * 1000, 1),
        }

    async def known(self, company_id: str, kind: str, choice: str) -> bool:
        """Whether ``choice`` (an id or a name) names a ``kind`` component of the company."""
        return await self._find(company_id, kind, choice) is not None

    def has_builtin_default(self, kind: str) -> bool:
        return self.catalog.builtin_default(kind) is not None

    async def has_default(self, company_id: str, kind: str) -> bool:
        if self.has_builtin_default(kind):
            return True
        return (
            await self._configs(company_id).find_one(
                {"kind": kind, "is_default": True}, projection={"_id": 1}
            )
            is not None
        )

    async def _find(self, company_id: str, kind: str, choice: str | None) -> dict[str, Any] | None:
        configs = self._configs(company_id)
        if choice is None:
            docs = await configs.find(
                {"kind": kind, "is_default": True}, sort=[("updated_at", -1)], limit=1
            )
            return docs[0] if docs else None
        doc = await configs.find_one({"_id": choice})
        if doc is not None and (not kind or doc["kind"] == kind):
            return doc
        if not kind:
            return None
        return await configs.find_one({"kind": kind, "name": choice})

    async def resolve(
        self, company_id: str, kind: str, choice: str | None, *, by_id_only: bool = False
    ) -> ComponentHandle:
        """The live component a step of ``company_id`` uses for ``kind`` (see the module
        docstring). Raises :class:`ComponentNotFound` naming the kind when there is none."""
        key = (company_id, kind, choice)
        cached = self._choices.get(key)
        now = time.monotonic()
        if cached is not None and now - cached.at < self.resolution_ttl:
            if cached.component_id is None:
                return self._builtin(company_id, kind)
            live = self._live.get((company_id, cached.component_id))
            if live is not None and live[0] == cached.rev:
                return live[1]
        doc = await self._find(company_id, kind, choice)
        if doc is None:
            if choice is not None or by_id_only:
                raise ComponentNotFound(
                    f"no {kind} component {choice!r} in this company"
                    if kind
                    else "component not found"
                )
            self._choices[key] = _Choice(None, 0, now)
            return self._builtin(company_id, kind)
        rev = int(doc.get("rev") or 1)
        self._choices[key] = _Choice(doc["_id"], rev, now)
        return await self._open(company_id, doc, rev)

    async def _open(self, company_id: str, doc: Mapping[str, Any], rev: int) -> ComponentHandle:
        spec = self._spec(doc["kind"], doc["provider"])
        # Before the live one is looked at: from there to storing the new one, nothing waits
        # (two tasks opening the same component must not both open it).
        await spec.load()
        live = self._live.get((company_id, doc["_id"]))
        if live is not None and live[0] == rev:
            return live[1]
        config = {**(doc.get("config") or {}), **(doc.get("secrets") or {})}
        provider = spec.open(config, self.env_for(company_id))
        handle = ComponentHandle(spec.kind, spec.provider, doc["_id"], provider)
        self._live[(company_id, doc["_id"])] = (rev, handle)
        if live is not None:
            await _close(live[1].provider)
        return handle

    def _builtin(self, company_id: str, kind: str) -> ComponentHandle:
        key = (company_id, f"{_BUILTIN}:{kind}")
        live = self._live.get(key)
        if live is not None:
            return live[1]
        spec = self.catalog.builtin_default(kind)
        if spec is None:
            raise ComponentNotFound(
                f"this company has no default {kind} component: create one (isDefault) or "
                "name one in the step's componentConfigIds"
            )
        handle = ComponentHandle(kind, spec.provider, None, spec.open({}, self.env_for(company_id)))
        self._live[key] = (0, handle)
        return handle

    def evict_expired(self) -> int:
        """Drop the resolutions older than ``resolution_ttl`` (the ``ttl-cache`` job); how
        many went."""
        now = time.monotonic()
        stale = [k for k, c in self._choices.items() if now - c.at >= self.resolution_ttl]
        for key in stale:
            del self._choices[key]
        return len(stale)

    def _forget(self, company_id: str) -> None:
        for key in [k for k in self._choices if k[0] == company_id]:
            del self._choices[key]

    async def aclose(self) -> None:
        """Close every live provider (the server stops)."""
        live, self._live = self._live, {}
        for _, handle in live.values():
            await _close(handle.provider)


async def _close(provider: Provider) -> None:
    try:
        await provider.aclose()
    except Exception:  # closing must not fail a step or a shutdown
        log.warning("component.close_failed", exc_info=True)


def _split(spec: ProviderSpec, config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    secret = set(spec.secret_fields)
    plain = {k: v for k, v in config.items() if k not in secret}
    secrets = {k: v for k, v in config.items() if k in secret}
    return plain, secrets


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidComponent([Problem("name", "must be a non-blank string")])
    if len(name) > NAME_MAX:
        raise InvalidComponent([Problem("name", f"must be at most {NAME_MAX} characters")])
    return name


def _without_values(message: str) -> str:
    """A schema problem without the value it quotes (it may be a password)."""
    if message.startswith(("'", '"')) and " is " in message:
        return message.split(" is ", 1)[1]
    return message
