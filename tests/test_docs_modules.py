"""docs/modules.md is generated from the module catalog, and its examples are valid.

* The file must be exactly what ``scripts/gen_module_docs.py`` writes now: a module added or
  changed without regenerating the page fails here (run the script, commit the page).
* Every module's example flowlet must be one a flow could hold: its arguments pass the
  module's own schema as a flow is checked when it is saved (``arg_problems(static=True)``),
  its expressions parse, and they name only what the engine binds (``$prev``, ``$flowId``,
  ``$playId``, ``$kv()``, ``$kvGlobal()``: see ``PlayRun._bindings`` / ``_resolve`` in
  ``flow8/engine/_runner.py``), so an example cannot teach a variable that is always empty.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from flow8.domain import parse_flow_definition
from flow8.expressions import expression_problems, split_template
from flow8.modules import ModuleSpec, default_registry

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gen_module_docs.py"
PAGE = ROOT / "docs" / "modules.md"
REGENERATE = "run `python scripts/gen_module_docs.py` and commit docs/modules.md"

# What `{{ }}` expressions can name besides JSONata's own functions.
BOUND_VARIABLES = {"prev", "flowId", "playId"}
BOUND_FUNCTIONS = {"kv", "kvGlobal"}


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_module_docs", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _generator()
MODULES = list(default_registry())

# Examples known to be wrong, by appId, each with the bug: strict xfails, so the test fails
# once the example is fixed, until its entry here is removed.
KNOWN_BAD_BINDINGS: dict[str, str] = {}


def _binding_cases() -> list[Any]:
    return [
        pytest.param(
            m,
            id=m.app_id,
            marks=pytest.mark.xfail(strict=True, reason=KNOWN_BAD_BINDINGS[m.app_id])
            if m.app_id in KNOWN_BAD_BINDINGS
            else (),
        )
        for m in MODULES
    ]


def test_the_module_reference_is_what_the_generator_writes_now() -> None:
    expected = gen.render()
    current = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
    assert current == expected, f"docs/modules.md is stale: {REGENERATE}"


def test_every_module_of_the_catalog_has_a_section() -> None:
    page = PAGE.read_text(encoding="utf-8")
    missing = [m.app_id for m in MODULES if f"\n### {m.app_id}\n" not in page]
    assert not missing, f"no section for {missing}: {REGENERATE}"


@pytest.mark.parametrize("spec", MODULES, ids=lambda m: m.app_id)
def test_the_example_passes_the_module_schema_as_a_saved_flow_would(spec: ModuleSpec) -> None:
    args, _ = gen.example_args(spec)
    assert spec.arg_problems(args, static=True) == [], (
        f"the example of {spec.app_id} does not match its args schema: fix "
        "ModuleSpec.example or EXAMPLES in scripts/gen_module_docs.py"
    )


@pytest.mark.parametrize("spec", MODULES, ids=lambda m: m.app_id)
def test_the_example_is_a_well_formed_flowlet(spec: ModuleSpec) -> None:
    flowlet = gen.example_flowlet(spec)
    parse_flow_definition({"name": "example", "flowlets": [flowlet]})  # raises if not
    assert [str(e) for e in expression_problems(flowlet["args"], "args")] == []


@pytest.mark.parametrize("spec", _binding_cases())
def test_the_example_names_only_what_the_engine_binds(spec: ModuleSpec) -> None:
    args, _ = gen.example_args(spec)
    unknown = sorted({name for source in _expressions(args) for name in _unbound(source)})
    assert not unknown, (
        f"the example of {spec.app_id} uses ${', $'.join(unknown)}, which the engine does "
        f"not bind (it binds ${', $'.join(sorted(BOUND_VARIABLES))} and "
        f"${'(), $'.join(sorted(BOUND_FUNCTIONS))}())"
    )


def test_the_tables_of_the_generator_name_modules_and_arguments_that_exist() -> None:
    registry = default_registry()
    for app_id in gen.EXAMPLES:
        found = registry.find(app_id)
        assert found is not None, f"EXAMPLES names {app_id!r}, which is no module any more"
        assert found.example is None, (
            f"{app_id} now has its own example: remove its entry from EXAMPLES"
        )
    for app_id, notes in gen.ARG_NOTES.items():
        found = registry.find(app_id)
        assert found is not None, f"ARG_NOTES names {app_id!r}, which is no module any more"
        for name in notes:
            assert name in (found.args_schema.get("properties") or {}), (
                f"ARG_NOTES: {app_id} has no argument {name!r}"
            )


def test_the_binding_check_catches_a_variable_the_engine_does_not_bind() -> None:
    # `$play.id` reads as the play's id but is always empty: the engine binds `$playId`.
    assert _unbound("$play.id") == {"play"}
    assert _unbound("$prev.order.id & $playId & $kv('k') & $string($prev.args)") == set()
    assert _unbound("'$not.a.variable' & \"$nor.this\"") == set()


def _expressions(value: Any) -> list[str]:
    if isinstance(value, str):
        parts = split_template(value) or []
        return [p[0] for p in parts if isinstance(p, tuple)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _expressions(v)]
    if isinstance(value, list):
        return [s for v in value for s in _expressions(v)]
    return []


_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_NAME = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)(\s*\()?")


def _unbound(source: str) -> set[str]:
    """The ``$names`` an expression reads that the engine does not bind (JSONata's built-in
    functions, called with ``(``, are not variables; text in quotes is not code)."""
    code = _QUOTED.sub("''", source)
    unknown: set[str] = set()
    for match in _NAME.finditer(code):
        name, called = match.group(1), match.group(2)
        if called:
            continue  # a function: JSONata's own, or $kv() / $kvGlobal()
        if name not in BOUND_VARIABLES:
            unknown.add(name)
    return unknown
