"""Pure flow rules: execution order and validation (every problem listed).

Validation needs to know modules and expressions, which live above the domain; they are
passed in as a :class:`FlowChecks` (the engine's ``validate_flow`` supplies it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from ._flow import FlowDefinition, Flowlet
from .exceptions import FlowValidationError, Problem

ITERATOR = "iterator"
AGGREGATOR = "aggregator"
KV_MODULES = frozenset({"kv-set", "kv-get", "kv-append", "kv-delete"})
"""The modules whose ``scope`` argument picks a KV scope (``flow_group`` needs a group)."""

_PREV_REF = re.compile(r"\$prev\s*\.\s*(?:`([^`]+)`|([A-Za-z_][A-Za-z0-9_]*))")


def no_flow_group(ref: str) -> str:
    """Why step ``ref`` cannot use KV scope ``flow_group``: said on save and, should such a
    step run anyway (a scope that comes from an expression), by the failed step."""
    return (
        f"step {ref!r} uses kv scope 'flow_group', but this flow has no group "
        "(give the flow a group, or use scope 'flow' or 'global')"
    )


def prev_refs(source: str) -> set[str]:
    """Refs an expression reads through ``$prev.<ref>`` (``args`` excluded)."""
    refs = {m.group(1) or m.group(2) for m in _PREV_REF.finditer(source)}
    refs.discard("args")
    return refs


def execution_groups(flowlets: Sequence[Flowlet]) -> list[list[Flowlet]]:
    """Flowlets grouped by effective index (their ``index``, else their list position),
    groups in ascending order; a group's flowlets run in parallel."""
    keyed = sorted(
        ((f.index if f.index is not None else pos, pos, f) for pos, f in enumerate(flowlets)),
        key=lambda t: (t[0], t[1]),
    )
    groups: list[list[Flowlet]] = []
    last: int | None = None
    for idx, _, f in keyed:
        if groups and idx == last:
            groups[-1].append(f)
        else:
            groups.append([f])
        last = idx
    return groups


class FlowChecks(Protocol):
    """What validation needs from the module catalog and the expression language."""

    def module_exists(self, app_id: str) -> bool: ...

    def arg_problems(self, app_id: str, args: Any) -> list[tuple[str, str]]:
        """(path inside args, message) for schema violations not hidden by expressions."""
        ...

    def expressions(self, value: Any, where: str) -> Iterable[tuple[str, str, str | None]]:
        """(where, source, parse error or None) for every ``{{ }}`` in ``value``."""
        ...


def validate_definition(definition: FlowDefinition, checks: FlowChecks) -> None:
    """Raise :class:`FlowValidationError` listing every problem of ``definition``."""
    problems = definition_problems(definition, checks)
    if problems:
        raise FlowValidationError(problems)


def definition_problems(definition: FlowDefinition, checks: FlowChecks) -> list[Problem]:
    problems: list[Problem] = []
    flowlets = definition.flowlets
    if not flowlets:
        problems.append(Problem("flowlets", "a flow needs at least one flowlet"))
    position = {id(f): i for i, f in enumerate(flowlets)}
    seen: dict[str, int] = {}
    for i, f in enumerate(flowlets):
        if f.ref in seen:
            problems.append(
                Problem(
                    f"flowlets[{i}].ref", f"duplicate ref {f.ref!r} (also flowlets[{seen[f.ref]}])"
                )
            )
        else:
            seen[f.ref] = i
    groups = execution_groups(flowlets)
    group_of: dict[str, int] = {}
    for g, group in enumerate(groups):
        for f in group:
            group_of.setdefault(f.ref, g)
    for g, group in enumerate(groups):
        for f in group:
            i = position[id(f)]
            path = f"flowlets[{i}]"
            if not checks.module_exists(f.app_id):
                problems.append(Problem(f"{path}.appId", f"unknown module {f.app_id!r}"))
            else:
                for arg_path, msg in checks.arg_problems(f.app_id, f.args):
                    where = f"{path}.args" + (f".{arg_path}" if arg_path else "")
                    problems.append(Problem(where, msg))
            if definition.group is None and _kv_scope(f) == "flow_group":
                # Storing under another scope instead would hand the value to the wrong
                # readers, and the step's output would still say flow_group.
                problems.append(Problem(f"{path}.args.scope", no_flow_group(f.ref)))
            if f.app_id in (ITERATOR, AGGREGATOR) and len(group) > 1:
                problems.append(
                    Problem(
                        f"{path}.index", f"an {f.app_id} cannot share its index with other flowlets"
                    )
                )
            sources: list[tuple[str, Any]] = [(f"{path}.args", f.args)]
            for k, flt in enumerate(f.filters):
                sources.append((f"{path}.filters[{k}].leftValue", flt.left_value))
                sources.append((f"{path}.filters[{k}].rightValue", flt.right_value))
            for base, value in sources:
                for where, source, error in checks.expressions(value, base):
                    if error is not None:
                        problems.append(Problem(where, error))
                        continue
                    for ref in sorted(prev_refs(source)):
                        if ref not in group_of:
                            problems.append(Problem(where, f"refers to unknown ref {ref!r}"))
                        elif group_of[ref] >= g:
                            problems.append(
                                Problem(
                                    where, f"refers to {ref!r}, which does not run before {f.ref!r}"
                                )
                            )
    problems.extend(_loop_problems(groups, position))
    return problems


def _kv_scope(f: Flowlet) -> Any:
    """A KV step's literal ``scope`` (None for other steps)."""
    if f.app_id not in KV_MODULES or not hasattr(f.args, "get"):
        return None
    return f.args.get("scope")


def _loop_problems(groups: list[list[Flowlet]], position: dict[int, int]) -> list[Problem]:
    """Aggregators must close the innermost open iterator."""
    problems: list[Problem] = []
    open_iterators: list[str] = []
    for group in groups:
        for f in group:
            path = f"flowlets[{position[id(f)]}]"
            if f.app_id == ITERATOR:
                open_iterators.append(f.ref)
            elif f.app_id == AGGREGATOR:
                source = f.args.get("sourceRef") if hasattr(f.args, "get") else None
                if not open_iterators:
                    problems.append(
                        Problem(
                            f"{path}.args.sourceRef", "an aggregator needs an iterator before it"
                        )
                    )
                elif source != open_iterators[-1]:
                    problems.append(
                        Problem(
                            f"{path}.args.sourceRef",
                            f"must be {open_iterators[-1]!r}, the innermost open iterator "
                            f"(got {source!r})",
                        )
                    )
                else:
                    open_iterators.pop()
    return problems
