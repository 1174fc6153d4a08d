"""The module catalog: what a flowlet's ``appId`` names."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

import attrs

from flow8.components import ComponentHandle
from flow8.domain import AiUsage

from ._schema import ArgsValidator, dotted
from .exceptions import DuplicateModule, InvalidArgs, UnknownModule


class KvAccess(Protocol):
    """Key-value access a module gets, already bound to the play's company and flow.

    ``scope`` is ``global``, ``flow_group`` or ``flow``. ``group`` is the flow's group; a
    flow without one has no ``flow_group`` scope.
    """

    @property
    def group(self) -> str | None: ...

    async def get(self, scope: str, key: str) -> tuple[bool, Any]: ...

    async def set(
        self,
        scope: str,
        key: str,
        value: Any,
        ttl_seconds: float | None,
        secret: bool | None = None,
    ) -> None:
        """``secret`` marks the entry secret (its value is masked in every record of every
        play that reads it, and never shown by the API); None leaves the mark as it is."""
        ...

    async def append(self, scope: str, key: str, value: Any, ttl_seconds: float | None) -> int: ...

    async def delete(self, scope: str, key: str) -> bool: ...


class ModuleContext(Protocol):
    """What a running module may use besides its arguments."""

    @property
    def company_id(self) -> str: ...

    @property
    def flow_id(self) -> str: ...

    @property
    def play_id(self) -> str: ...

    @property
    def ref(self) -> str: ...

    @property
    def component_config_ids(self) -> Mapping[str, str]: ...

    @property
    def kv(self) -> KvAccess: ...

    async def component(self, kind: str) -> ComponentHandle:
        """The component this step uses for ``kind`` (``flow8.components``); its calls go
        through the seam (timed, recorded when the flow asks)."""
        ...

    async def credential(self, credential_id: str) -> tuple[str, dict[str, Any]]:
        """(type, data) of a stored credential; its texts are masked in every record."""
        ...

    def record_usage(self, usage: AiUsage) -> None:
        """Record what a provider call spent (tokens, cost) on this step's layer; the play
        and the company's usage sum it. Metered modules call it once per provider call."""
        ...

    def traceparent(self) -> str | None:
        """A W3C ``traceparent`` header for one outbound request of this step: the trace of
        the request that started the play with a fresh span id, or None when the play was
        started without one (flow8 starts no traces of its own)."""
        ...

    def log_line(self, line: Mapping[str, Any]) -> None:
        """Stream a console line as an event to whoever watches the play."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait; long waits may suspend the play (persisted, no actor held) and resume."""
        ...

    async def run_subflow(
        self, flow_id: str, args: Any, *, wait: bool, timeout: float | None
    ) -> dict[str, Any]: ...


RunFn = Callable[[ModuleContext, Mapping[str, Any]], Awaitable[Any]]


def _matches_expression(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


@attrs.frozen
class ModuleSpec:
    """A module: its identity, contract (JSON Schemas) and implementation.

    ``idempotent`` tells the engine whether running the module again after a crash is safe;
    a non-idempotent step waits for earlier writes to be durable and is never re-run
    silently. ``literal_args`` are arguments that must not contain ``{{ }}`` (they are code,
    such as a JSONata expression, and data must never become code). ``static_check`` finds
    what the schema cannot see in literal arguments, such as an expression that does not
    parse, so a flow is refused when it is saved rather than failing when it runs.
    ``args_check`` finds what the schema cannot express about the arguments' shape (such as
    two arguments that exclude each other): it runs on the literal arguments when the flow
    is saved and on the resolved ones before the step runs, so it must judge only what an
    expression cannot change (which arguments are present), and cope with arguments the
    schema refuses.
    ``idempotent_when`` refines ``idempotent`` by the resolved arguments (``curl``: a GET is,
    a POST is not unless it sends an ``Idempotency-Key``). ``secrets_of`` names the texts
    of the resolved arguments that are secrets (a ``bearerToken``): the play masks them in
    every record from before the step is first recorded. ``components`` are the kinds of
    component the module uses (a flow naming it is refused when saved if the company has
    none of a kind and no built-in default exists). ``example`` is a flowlet's ``args`` for
    the generated module reference. ``at_play_end`` releases what the module holds for the
    play (``storage-tempdir``'s directory): the engine calls it once per step of the flow
    when the play ends, whatever its end, also after a crash and resume, so it must be
    idempotent and cope with a step that never ran. ``metered`` modules spend money (AI
    calls): the engine refuses to start one past the company's or the flow's budget
    (BUDGET_EXCEEDED), and they report what they spent with ``ModuleContext.record_usage``.
    ``starts_plays`` modules start other plays (``subflow``): a play holds back before such
    steps while its company's play starts queue up (``FairGate.hold_back``).
    """

    app_id: str
    category: str
    description: str
    args_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any]
    idempotent: bool
    run: RunFn
    literal_args: tuple[str, ...] = ()
    static_check: Callable[[Mapping[str, Any]], list[tuple[str, str]]] | None = None
    args_check: Callable[[Mapping[str, Any]], list[tuple[str, str]]] | None = None
    idempotent_when: Callable[[Mapping[str, Any]], bool] | None = None
    secrets_of: Callable[[Mapping[str, Any]], list[str]] | None = None
    components: tuple[str, ...] = ()
    example: Mapping[str, Any] | None = None
    at_play_end: Callable[[ModuleContext], Awaitable[None]] | None = None
    metered: bool = False
    starts_plays: bool = False
    _validator: Any = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_validator", ArgsValidator(self.args_schema))

    def arg_problems(self, args: Any, *, static: bool = False) -> list[tuple[str, str]]:
        """(path, message) for every schema violation.

        With ``static`` (flow validation, before expressions are evaluated), a value that
        holds an expression is not checked: only its resolved value can be.
        """
        if not static:
            problems: list[tuple[str, str]] = self._validator.problems(args)
            return problems + self._args_problems(args)
        problems = []
        for path, message in self._validator.errors(args):
            if _under_expression(args, list(path)):
                continue
            problems.append((dotted(path), message))
        if isinstance(args, Mapping):
            for name in self.literal_args:
                if _contains_expression(args.get(name)):
                    problems.append((name, "must be literal: expressions are not allowed here"))
            if self.static_check is not None and not problems:
                problems += self.static_check(args)
        return problems + self._args_problems(args)

    def _args_problems(self, args: Any) -> list[tuple[str, str]]:
        if self.args_check is None or not isinstance(args, Mapping):
            return []
        return self.args_check(args)

    def is_idempotent(self, args: Any) -> bool:
        """Whether running the step again with ``args`` after a crash is safe."""
        if self.idempotent_when is None or not isinstance(args, Mapping):
            return self.idempotent
        return self.idempotent_when(args)

    def check_args(self, args: Any) -> None:
        """Raise :class:`InvalidArgs` listing every violation of the args schema."""
        problems = self.arg_problems(args)
        if problems:
            text = "; ".join(f"{p or 'args'}: {m}" for p, m in problems)
            raise InvalidArgs(f"invalid args for {self.app_id}: {text}")

    def describe(self) -> dict[str, Any]:
        """Catalog entry (camelCase, for the API and ``flow8 modules list``)."""
        return {
            "appId": self.app_id,
            "category": self.category,
            "description": self.description,
            "idempotent": self.idempotent,
            "components": list(self.components),
            "argsSchema": self.args_schema,
            "outputSchema": self.output_schema,
        }


def _under_expression(args: Any, path: list[Any]) -> bool:
    node = args
    if _matches_expression(node):
        return True
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
        if _matches_expression(node):
            return True
    return False


def _contains_expression(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, Mapping):
        return any(_contains_expression(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_expression(v) for v in value)
    return False


@attrs.define
class ModuleRegistry:
    """appId -> :class:`ModuleSpec`. The default catalog is :func:`default_registry`."""

    _modules: dict[str, ModuleSpec] = attrs.field(factory=dict)

    def register(self, spec: ModuleSpec, *, replace: bool = False) -> None:
        if spec.app_id in self._modules and not replace:
            raise DuplicateModule(f"module {spec.app_id!r} is already registered")
        self._modules[spec.app_id] = spec

    def get(self, app_id: str) -> ModuleSpec:
        try:
            return self._modules[app_id]
        except KeyError:
            raise UnknownModule(f"unknown module {app_id!r}") from None

    def find(self, app_id: str) -> ModuleSpec | None:
        return self._modules.get(app_id)

    def __contains__(self, app_id: object) -> bool:
        return app_id in self._modules

    def __iter__(self) -> Iterator[ModuleSpec]:
        return iter(sorted(self._modules.values(), key=lambda m: (m.category, m.app_id)))

    def copy(self) -> ModuleRegistry:
        return ModuleRegistry(dict(self._modules))

    def catalog(self) -> list[dict[str, Any]]:
        """Every module's catalog entry, sorted by category then appId."""
        return [m.describe() for m in self]

    def extend(self, specs: Iterable[ModuleSpec]) -> None:
        for s in specs:
            self.register(s)
