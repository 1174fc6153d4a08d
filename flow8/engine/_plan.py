"""A flow version compiled for execution: ordered groups and loops of ready-to-run steps.

Compiled once per flow version and cached; compiling parses every expression, so the hot
path only evaluates.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from flow8.domain import (
    Flow,
    FlowDefinition,
    Flowlet,
    Problem,
    definition_problems,
    execution_groups,
)
from flow8.domain import FlowValidationError as _FlowValidationError
from flow8.expressions import (
    CompiledFilter,
    CompiledValue,
    ExpressionError,
    compile_filters,
    compile_value,
    expression_problems,
)
from flow8.modules import (
    AGGREGATOR,
    ITERATOR,
    ArgsValidator,
    InvalidSchema,
    ModuleRegistry,
    ModuleSpec,
)


@attrs.frozen
class Step:
    flowlet: Flowlet
    module: ModuleSpec
    args: CompiledValue
    filters: tuple[CompiledFilter, ...]

    @property
    def ref(self) -> str:
        return self.flowlet.ref


@attrs.frozen
class Group:
    """Steps sharing an index: run in parallel. ``starts_plays``: one of them starts other
    plays (a subflow), so the play holds back before it while its company's starts queue."""

    steps: tuple[Step, ...]
    starts_plays: bool = attrs.field(init=False)

    @starts_plays.default
    def _any_starts_plays(self) -> bool:
        return any(step.module.starts_plays for step in self.steps)


@attrs.frozen
class Loop:
    """An iterator, the nodes run once per item, and the aggregator closing it (if any)."""

    iterator: Step
    body: tuple[Node, ...]
    aggregator: Step | None


Node = Group | Loop


@attrs.frozen
class Plan:
    flow: Flow
    nodes: tuple[Node, ...]
    input_validator: ArgsValidator | None = None

    def steps(self) -> Iterator[Step]:
        """Every step in execution order (loops flattened)."""
        yield from _walk(self.nodes)

    def order(self) -> list[str]:
        return [s.ref for s in self.steps()]


def _walk(nodes: Iterable[Node]) -> Iterator[Step]:
    for node in nodes:
        if isinstance(node, Group):
            yield from node.steps
        else:
            yield node.iterator
            yield from _walk(node.body)
            if node.aggregator is not None:
                yield node.aggregator


@attrs.frozen
class _Checks:
    registry: ModuleRegistry

    def module_exists(self, app_id: str) -> bool:
        return app_id in self.registry

    def arg_problems(self, app_id: str, args: Any) -> list[tuple[str, str]]:
        return self.registry.get(app_id).arg_problems(args, static=True)

    def expressions(self, value: Any, where: str) -> list[tuple[str, str, str | None]]:
        out: list[tuple[str, str, str | None]] = []
        for err in expression_problems(value, where):
            out.append((err.where, err.source, f"expression {{{{ {err.source} }}}} {err.message}"))
        try:
            compiled = compile_value(value, where)
        except ExpressionError:
            return out
        out.extend((path, expr.source, None) for path, expr in compiled.expressions)
        return out


def validate_definition(definition: FlowDefinition, registry: ModuleRegistry) -> list[Problem]:
    """Every problem of ``definition`` (empty when it is valid)."""
    problems = definition_problems(definition, _Checks(registry))
    if definition.input_schema is not None:
        try:
            ArgsValidator(definition.input_schema)
        except InvalidSchema as e:
            message = str(e).splitlines()[0] if str(e) else type(e).__name__
            problems.append(Problem("inputSchema", f"is not a valid JSON Schema: {message}"))
    return problems


def check_definition(definition: FlowDefinition, registry: ModuleRegistry) -> None:
    """Raise :class:`flow8.domain.FlowValidationError` listing every problem."""
    problems = validate_definition(definition, registry)
    if problems:
        raise _FlowValidationError(problems)


def compile_plan(flow: Flow, registry: ModuleRegistry) -> Plan:
    """Compile a (valid) flow version; raises FlowValidationError when it is not valid."""
    check_definition(flow.definition, registry)
    groups = execution_groups(flow.definition.flowlets)
    steps = [[_step(f, registry) for f in g] for g in groups]
    nodes, rest = _nodes(steps, 0, None)
    assert rest == len(steps)
    schema = flow.definition.input_schema
    return Plan(flow, tuple(nodes), ArgsValidator(schema) if schema else None)


def _step(f: Flowlet, registry: ModuleRegistry) -> Step:
    return Step(
        flowlet=f,
        module=registry.get(f.app_id),
        args=compile_value(dict(f.args), f"{f.ref}.args"),
        filters=compile_filters(f.filters, f.ref),
    )


def _nodes(groups: list[list[Step]], i: int, closing: str | None) -> tuple[list[Node], int]:
    """Nodes from group ``i`` until the aggregator closing iterator ``closing`` (exclusive)."""
    nodes: list[Node] = []
    while i < len(groups):
        group = groups[i]
        first = group[0]
        if first.module.app_id == AGGREGATOR and closing is not None:
            source = first.flowlet.args.get("sourceRef")
            if source == closing:
                return nodes, i
        if first.module.app_id == ITERATOR:
            body, j = _nodes(groups, i + 1, first.ref)
            aggregator = groups[j][0] if j < len(groups) else None
            nodes.append(Loop(first, tuple(body), aggregator))
            i = j + 1 if aggregator is not None else j
            continue
        nodes.append(Group(tuple(group)))
        i += 1
    return nodes, i


class PlanCache:
    """Compiled plans by (company, flow id, version); versions are immutable, so entries
    never go stale, they only age out (LRU)."""

    def __init__(self, registry: ModuleRegistry, size: int = 512) -> None:
        self.registry = registry
        self._size = size
        self._plans: OrderedDict[tuple[str, str, int], Plan] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, flow: Flow) -> Plan:
        key = (flow.company_id, flow.id, flow.version)
        with self._lock:
            plan = self._plans.get(key)
            if plan is not None:
                self._plans.move_to_end(key)
                return plan
        plan = compile_plan(flow, self.registry)
        with self._lock:
            self._plans[key] = plan
            while len(self._plans) > self._size:
                self._plans.popitem(last=False)
        return plan


def loop_refs(nodes: Iterable[Node]) -> Mapping[str, Loop]:
    out: dict[str, Loop] = {}
    for node in nodes:
        if isinstance(node, Loop):
            out[node.iterator.ref] = node
            out.update(loop_refs(node.body))
    return out
