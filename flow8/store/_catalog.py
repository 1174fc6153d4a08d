"""The catalog: every collection flow8 stores, its scope, indexes and secret fields.

This is the one place indexes are declared; start-up ensures them idempotently on every
backend. Indexed fields hold scalars (never arrays) unless the index says ``multikey=True``: the
store refuses a write that would put an array there, which lets the sqlite backend answer
equality on those fields straight from an expression index, as MongoDB would.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

import attrs

from .exceptions import InvalidDocument, UnknownCollection

Scope = Literal["tenant", "system"]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_FIELD = re.compile(r'^[^.$"\x00][^."\x00]*$')


def _check_path(path: str) -> None:
    for part in path.split("."):
        if not _FIELD.match(part):
            raise ValueError(f"invalid field path in catalog: {path!r}")


@attrs.frozen
class IndexSpec:
    """One index. ``keys`` are (dotted path, 1 | -1) pairs in index order."""

    keys: tuple[tuple[str, int], ...]
    unique: bool = False
    expire_after_seconds: int | None = None
    multikey: bool = False
    name: str = ""

    def __attrs_post_init__(self) -> None:
        if not self.keys:
            raise ValueError("an index needs at least one key")
        for path, direction in self.keys:
            _check_path(path)
            if direction not in (1, -1):
                raise ValueError(f"index direction must be 1 or -1, got {direction!r}")
        ttl = self.expire_after_seconds
        if ttl is not None and (len(self.keys) != 1 or ttl < 0):
            raise ValueError("a TTL index has one datetime key and expire_after_seconds >= 0")
        if not self.name:
            object.__setattr__(self, "name", "_".join(f"{p}_{d}" for p, d in self.keys))

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.keys)


def index(
    *keys: str | tuple[str, int],
    unique: bool = False,
    expire_after_seconds: int | None = None,
    multikey: bool = False,
    name: str = "",
) -> IndexSpec:
    """Shorthand: ``index("company_id", ("created_at", -1), unique=True)``."""
    pairs = tuple((k, 1) if isinstance(k, str) else k for k in keys)
    return IndexSpec(pairs, unique, expire_after_seconds, multikey, name)


@attrs.frozen
class CollectionSpec:
    name: str
    scope: Scope
    indexes: tuple[IndexSpec, ...] = ()
    secret_fields: frozenset[str] = frozenset()
    # tenant collections that jobs spanning companies may reach via store.cross_tenant
    cross_tenant: bool = False
    # Top-level fields holding data that is never filtered, sorted or indexed on (a play's
    # input and output, a layer's arguments): the sqlite backend keeps them out of the
    # indexed document, so maintaining its expression indexes never parses them.
    bulk_fields: frozenset[str] = frozenset()

    def __attrs_post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"invalid collection name {self.name!r}")
        if self.scope not in ("tenant", "system"):
            raise ValueError(f"scope must be 'tenant' or 'system', got {self.scope!r}")
        if self.cross_tenant and self.scope != "tenant":
            raise ValueError(f"{self.name}: only tenant collections can be cross-tenant")
        for field in self.secret_fields:
            if "." in field or not _FIELD.match(field):
                raise ValueError(f"secret fields are top-level field names, got {field!r}")
        for field in self.bulk_fields:
            if "." in field or not _FIELD.match(field):
                raise ValueError(f"bulk fields are top-level field names, got {field!r}")
        for ix in self.indexes:
            if any(f.split(".")[0] in self.apart for f in ix.fields):
                raise ValueError(
                    f"index {ix.name!r} covers a secret or bulk field of {self.name!r}"
                )
        names = [ix.name for ix in self.indexes]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate index names in {self.name!r}")

    @functools.cached_property
    def apart(self) -> frozenset[str]:
        """Fields never filtered, sorted or indexed on: secret fields (encrypted) and bulk
        fields. The sqlite backend stores them apart from the indexed document."""
        return self.secret_fields | self.bulk_fields

    @functools.cached_property
    def scalar_fields(self) -> frozenset[str]:
        """Paths the store keeps array-free (indexed, not multikey), plus the fixed ones."""
        out = {"_id"}
        if self.scope == "tenant":
            out.add("company_id")
        for ix in self.indexes:
            if not ix.multikey:
                out.update(ix.fields)
        return frozenset(out)

    @functools.cached_property
    def _checked_scalars(self) -> tuple[str, ...]:
        # _id and company_id are checked to be strings elsewhere
        return tuple(sorted(self.scalar_fields - {"_id", "company_id"}))

    @functools.cached_property
    def ttl(self) -> IndexSpec | None:
        return next((ix for ix in self.indexes if ix.expire_after_seconds is not None), None)

    def check_scalar_fields(self, doc: Mapping[str, Any]) -> None:
        """Refuse a document holding an array where an index expects a scalar."""
        for path in self._checked_scalars:
            cur: Any = doc
            for part in path.split("."):
                cur = cur.get(part) if isinstance(cur, Mapping) else None
            if isinstance(cur, list):
                raise InvalidDocument(
                    f"{self.name}: field {path!r} is indexed as a scalar and may not hold an array"
                )


@attrs.frozen
class Catalog:
    """An immutable set of collection specs, looked up by name."""

    specs: Mapping[str, CollectionSpec]

    @classmethod
    def of(cls, specs: Iterable[CollectionSpec]) -> Catalog:
        table: dict[str, CollectionSpec] = {}
        for spec in specs:
            if spec.name in table:
                raise ValueError(f"collection {spec.name!r} declared twice")
            table[spec.name] = spec
        return cls(table)

    def get(self, name: str) -> CollectionSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise UnknownCollection(f"unknown collection {name!r}: not in the catalog") from None

    def __iter__(self) -> Iterator[CollectionSpec]:
        return iter(self.specs.values())

    def __contains__(self, name: object) -> bool:
        return name in self.specs

    def extended(self, *specs: CollectionSpec) -> Catalog:
        return Catalog.of([*self.specs.values(), *specs])


def _tenant(
    name: str,
    *indexes: IndexSpec,
    secrets: Iterable[str] = (),
    cross_tenant: bool = False,
    bulk: Iterable[str] = (),
    by_id: bool = True,
) -> CollectionSpec:
    # A tenant collection's listings page in creation order, (company_id, _id), unless it
    # says otherwise (``by_id=False``: its reads all go through its own indexes), since every
    # index costs every write of the collection.
    paged = (index("company_id", "_id"),) if by_id else ()
    return CollectionSpec(
        name, "tenant", (*paged, *indexes), frozenset(secrets), cross_tenant, frozenset(bulk)
    )


def _system(name: str, *indexes: IndexSpec, secrets: Iterable[str] = ()) -> CollectionSpec:
    return CollectionSpec(name, "system", tuple(indexes), frozenset(secrets))


CATALOG = Catalog.of(
    [
        # -- system: reached through store.system only
        _system("companies", index("slug", unique=True)),
        _system("users", index("email", unique=True)),
        _system(
            "memberships",
            index("company_id", "user_id", unique=True),
            index("user_id"),
        ),
        _system(
            "sessions",
            index("token_hash", unique=True),
            index("user_id"),
            index("expires_at", expire_after_seconds=0),
        ),
        _system("api_keys", index("key_hash", unique=True), index("company_id")),
        # [identity] pending invitations to join a company: found by the hash of their token
        # (never the token), one per (company, email); expired ones are purged
        _system(
            "invitations",
            index("token_hash", unique=True),
            index("company_id", "email", unique=True),
            index("expires_at", expire_after_seconds=0),
        ),
        # [instances] one document per running ``flow8 serve`` process, refreshed by its
        # heartbeat; and one claim per instance index (_id = the index as text) held by a
        # group of instances (the workers of one serve): flow8.services.instances
        _system(
            "instances",
            index("group"),
            index("index", "started_at"),
            index("expires_at", expire_after_seconds=0),
        ),
        _system("instance_indexes", index("expires_at", expire_after_seconds=0)),
        # [channels] one claim per listening port (_id = the port, as text), holding the
        # company and channel: the unique _id makes port allocation race-safe across
        # instances sharing the database (flow8.services.channels)
        _system("channel_ports", index("claimed_at")),
        # store-internal bookkeeping (key rotation progress)
        _system("store_meta"),
        # [retention] the plays a retention run is deleting, written before it deletes any
        # of them and removed once they are gone with their layers: a crashed run is finished
        # by the next one (flow8.jobs._retention)
        _system("retention_journal"),
        # [http/identity engineer] audit entries outside any company (failed logins for
        # unknown accounts); tenant audit entries live in the tenant collection audit_logs.
        _system(
            "system_audit_logs",
            index(("created_at", -1)),
            index("action"),
        ),
        # -- tenant: reached through store.tenant(company_id) only
        _tenant("flows", index("company_id", "name"), index("company_id", ("updated_at", -1))),
        _tenant(
            "flow_versions",
            index("company_id", "flow_id", ("version", -1), unique=True),
            bulk=["definition"],
        ),
        _tenant(
            "plays",
            # listings newest first: all of a company's plays, by state, by flow
            index("company_id", ("created_at", -1)),
            index("company_id", "status", ("created_at", -1)),
            index("company_id", "flow_id", ("created_at", -1)),
            index("status", "lease_expires_at"),
            index("status", "wake_at"),
            index("status", "created_at"),
            index("lease_owner", "status"),
            index("company_id", "idempotency_key", unique=True),
            # data: input and output when play data is encrypted at rest; sealed: the real
            # ones when masked; secrets: the secret texts the play knows (engine only)
            secrets=["data", "sealed", "secrets"],
            bulk=["input", "output", "error"],
            cross_tenant=True,  # dispatcher claims, retention
            by_id=False,  # listed by created_at (above); read one by one through _id
        ),
        _tenant(
            "play_layers",
            # a play's layers, paged in order; also every other read of layers (by play).
            # No (play_id, layer_id) index: `_id` is "<play id>:<layer id>", so the primary
            # key already keeps a layer unique, and each index costs every layer write.
            index("company_id", "play_id", "seq"),
            secrets=["data", "sealed"],  # as for plays: args and output
            bulk=["args", "output", "error", "attempts", "calls"],
            cross_tenant=True,  # retention
            by_id=False,  # read by play only, never listed across a company
        ),
        # [usage] what metered steps (AI calls) spent, counted per UTC day, flow, provider
        # and model (_id = "<day>|<flow id>|<provider>|<model>", written with $inc by the
        # engine with the step's layer); the usage report and the budgets read them
        _tenant("usage_daily", index("company_id", "day"), index("company_id", "flow_id", "day")),
        # [usage] budgets: _id "company" for the company's, "flow:<flow id>" for a flow's
        _tenant("budgets"),
        _tenant(
            "kv",  # `secret`: the entry is masked in plays' records and never shown
            index("company_id", "scope", "key", unique=True),
            index("expires_at", expire_after_seconds=0),
            secrets=["value"],
        ),
        _tenant(
            "audit_logs",
            index("company_id", ("created_at", -1)),
            index("company_id", "action"),
            cross_tenant=True,  # retention
        ),
        # [retention] policies: one per (scope, target, target id); the retention job reads
        # every company's
        _tenant(
            "retention_policies",
            index("company_id", "scope", "target", "target_id", unique=True),
            cross_tenant=True,  # retention
        ),
        _tenant(
            "schedules",
            index("company_id", "flow_id"),
            index("enabled", "next_fire_at"),
            index("updated_at"),  # the scheduler re-reads the schedules changed lately
            cross_tenant=True,  # scheduler
        ),
        _tenant(
            "schedule_ticks",
            index("company_id", "schedule_id", "fire_at", unique=True),
            index("expires_at", expire_after_seconds=0),
            # claimed ticks whose play is not started yet (finished by any scheduler)
            index("pending", "claimed_at"),
            cross_tenant=True,  # scheduler
        ),
        _tenant(
            "component_configs",
            index("company_id", "kind", "name", unique=True),
            secrets=["secrets"],
        ),
        # credentials (flow8.services.credentials): data encrypted; listed by name, by type
        _tenant(
            "links",
            index("company_id", "name", unique=True),
            index("company_id", "type", "name"),
            secrets=["data"],
        ),
        # [credentials] OAuth2 authorizations started and not yet completed: found by the
        # SHA-256 of their state (never the state), the PKCE verifier encrypted; a callback
        # deletes the one it uses, and expired ones are purged (flow8.services.credentials)
        _tenant(
            "oauth_states",
            index("expires_at", expire_after_seconds=0),
            secrets=["verifier"],
        ),
        # [credentials] when each connected oauth2 credential's token is due for refresh:
        # ids and times only (the tokens stay in links, which no job reaches across
        # companies), so the oauth-refresh job finds the due ones of every company
        _tenant(
            "oauth_refresh",
            index("due_at"),
            cross_tenant=True,  # the oauth-refresh job
        ),
        _tenant(
            "channels",
            index("company_id", "name", unique=True),
            index("company_id", "kind"),  # a company's mcp channels (its tools)
            index("port"),
            index("enabled"),  # the listeners of every company
            secrets=["secrets"],  # the bearer token and the HMAC secret
            cross_tenant=True,  # the channel supervisor starts every enabled channel
        ),
    ]
)
