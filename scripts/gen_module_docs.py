"""Write docs/modules.md, the module reference, from the module catalog itself.

    python scripts/gen_module_docs.py           # rewrite docs/modules.md
    python scripts/gen_module_docs.py --check   # exit 1 if docs/modules.md is stale

Everything in the reference comes from ``flow8.modules.default_registry()``: each module's
appId, category, description, argument and output JSON Schemas, idempotency and the kinds of
component it uses, so the page cannot drift from the code: ``tests/test_docs_modules.py``
fails when the file is not what this script writes now, and checks every example's arguments
against its module's schema.

Each module gets an example flowlet: its own ``ModuleSpec.example`` when it has one, else the
entry for its appId in ``EXAMPLES`` below, else (a module added without either) arguments
made up from its schema's required properties, flagged in the page as such.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "modules.md"
if str(ROOT) not in sys.path:  # run from a checkout without flow8 installed
    sys.path.insert(0, str(ROOT))

from flow8.components import KINDS, PROVIDERS  # noqa: E402
from flow8.modules import ModuleRegistry, ModuleSpec, default_registry  # noqa: E402

# Example arguments for the modules that declare no ``example`` of their own. `$prev.<ref>`
# stands for the output of an earlier step with that ref (`$prev.args`: the play's input).
EXAMPLES: dict[str, dict[str, Any]] = {
    "set": {
        "value": {"customer": "{{ $prev.args.email }}", "items": "{{ $count($prev.args.items) }}"}
    },
    "template": {"text": "Hello {{ $prev.args.name }}, order {{ $prev.order.id }} has shipped."},
    "transform": {"expression": "$sum(items.(price * qty))", "input": "{{ $prev.args }}"},
    "json-parse": {"text": "{{ $prev.fetch.body }}"},
    "json-stringify": {"value": "{{ $prev.args }}", "indent": 2},
    "delay": {"seconds": 30},
    "fail": {"message": "order {{ $prev.args.id }} has no items"},
    "noop": {"value": {"ok": True}},
    "kv-set": {"key": "last-order", "value": "{{ $prev.args.id }}", "ttlSeconds": 86400},
    "kv-get": {"key": "last-order", "default": None},
    "kv-append": {"key": "seen-orders", "value": "{{ $prev.args.id }}", "scope": "global"},
    "kv-delete": {"key": "last-order"},
    "router": {
        "routes": [
            {"condition": "{{ $prev.args.total > 1000 }}", "label": "review"},
            {"condition": "{{ $prev.args.total > 0 }}", "label": "auto"},
        ],
        "default": "reject",
    },
    "iterator": {"items": "{{ $prev.args.orders }}"},
    "aggregator": {"sourceRef": "each", "field": "line.total"},
    "subflow": {"flowId": "<flow id>", "args": {"orderId": "{{ $prev.args.id }}"}, "timeout": 60},
    "enumeration": {"from": 1, "to": 10, "step": 1},
}

# Words for arguments whose schema has no description, where the name alone misleads:
# appId -> argument -> text (tests/test_docs_modules.py checks that each still exists).
ARG_NOTES: dict[str, dict[str, str]] = {
    "aggregator": {
        "iterations": "filled in by the engine (every iteration's outputs): leave it out",
        "lastRef": "filled in by the engine (the last step before the aggregator): leave it out",
    },
}

# Categories in the order a newcomer meets them; any other category follows, alphabetically.
CATEGORY_ORDER = ("data", "utility", "control", "kv", "http", "storage", "database", "console")

NOT_IDEMPOTENT = (
    "No. A step of this module that was running when its instance stopped is not run again "
    "silently: it fails as *interrupted*, and the play can be retried from it."
)
IDEMPOTENT = "Yes: after a crash the step may simply run again with the same arguments."
METERED = (
    "Yes: each call to the provider is recorded on the step's layer (provider, model, input "
    "and output tokens, cost from the component's price table) and counted in the play's and "
    "the company's usage; a step that would start past a budget fails with BUDGET_EXCEEDED."
)


# -- examples ---------------------------------------------------------------------------------


def example_args(spec: ModuleSpec) -> tuple[dict[str, Any], str]:
    """The example arguments of ``spec`` and where they come from: ``module`` (its own
    ``example``), ``table`` (``EXAMPLES``) or ``schema`` (made up from its schema)."""
    if spec.example is not None:
        return _plain(spec.example), "module"
    if spec.app_id in EXAMPLES:
        return _plain(EXAMPLES[spec.app_id]), "table"
    return _from_schema(spec.args_schema), "schema"


def example_ref(app_id: str) -> str:
    """A ref for the example flowlet: the last word of the appId (``storage-write`` ->
    ``write``)."""
    word = app_id.rsplit("-", 1)[-1]
    return word if word and word != "args" else "step"


def example_flowlet(spec: ModuleSpec) -> dict[str, Any]:
    args, _ = example_args(spec)
    return {"ref": example_ref(spec.app_id), "appId": spec.app_id, "args": args}


def _plain(value: Any) -> Any:
    """Mappings and sequences of a spec as plain JSON (dicts and lists)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _from_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    required = list(schema.get("required") or [])
    if not required:
        for branch in schema.get("anyOf") or schema.get("oneOf") or []:
            required = list(branch.get("required") or [])
            if required:
                break
    return {name: _sample(properties.get(name) or {}) for name in required}


def _sample(schema: Mapping[str, Any]) -> Any:
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0] if kind else None
    if kind == "string":
        text = "text".ljust(int(schema.get("minLength", 0)), "x")
        return text[: int(schema.get("maxLength", len(text)))]
    if kind in ("integer", "number"):
        if "minimum" in schema:
            number = schema["minimum"]
        elif "exclusiveMinimum" in schema:
            number = schema["exclusiveMinimum"] + 1
        else:
            number = 1
        return min(number, schema.get("maximum", number))
    if kind == "boolean":
        return True
    if kind == "array":
        return (
            [_sample(schema["items"])] * int(schema.get("minItems", 0)) if "items" in schema else []
        )
    if kind == "object":
        return _from_schema(schema)
    return "value"


# -- schemas in words -------------------------------------------------------------------------


def type_of(schema: Any) -> str:
    """A JSON Schema's type in a few words: ``string``, ``array of string``, ``any``."""
    if not isinstance(schema, Mapping) or not schema:
        return "any"
    if "const" in schema:
        return _json_type(schema["const"])
    if "enum" in schema and "type" not in schema:
        kinds = sorted({_json_type(v) for v in schema["enum"]})
        return " or ".join(kinds)
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    words = []
    for k in kinds:
        if k == "array" and isinstance(schema.get("items"), Mapping) and schema["items"]:
            words.append(f"array of {type_of(schema['items'])}")
        elif k == "object" and isinstance(schema.get("additionalProperties"), Mapping):
            words.append(f"object of {type_of(schema['additionalProperties'])}")
        else:
            words.append(str(k))
    for combinator in ("anyOf", "oneOf"):
        branches = schema.get(combinator)
        if not kinds and isinstance(branches, list) and branches:
            words.append(" or ".join(type_of(b) for b in branches))
    return " or ".join(words) if words else "any"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _code(value: Any) -> str:
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def constraints(schema: Any) -> list[str]:
    """What a property's schema demands beyond its type, in words."""
    if not isinstance(schema, Mapping):
        return []
    out: list[str] = []
    if "enum" in schema:
        out.append("one of " + ", ".join(_code(v) for v in schema["enum"]))
    if "const" in schema:
        out.append(f"exactly {_code(schema['const'])}")
    out += _bounds(schema, "minLength", "maxLength", "characters")
    out += _bounds(schema, "minItems", "maxItems", "items")
    out += _bounds(schema, "minProperties", "maxProperties", "entries")
    for key, word in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
    ):
        if key in schema:
            out.append(f"{word} {schema[key]:,}" if _is_number(schema[key]) else f"{word} ?")
    if "pattern" in schema:
        out.append(f"matches `{schema['pattern']}`")
    if "format" in schema:
        out.append(f"format {schema['format']}")
    if "default" in schema:
        out.append(f"default {_code(schema['default'])}")
    nested = schema.get("properties")
    if isinstance(nested, Mapping) and nested:
        out.append("keys: " + _keys(nested, schema.get("required") or []))
    items = schema.get("items")
    if isinstance(items, Mapping) and isinstance(items.get("properties"), Mapping):
        out.append("each with keys: " + _keys(items["properties"], items.get("required") or []))
    if schema.get("additionalProperties") is False and nested:
        out.append("no other keys")
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bounds(schema: Mapping[str, Any], low: str, high: str, unit: str) -> list[str]:
    lo, hi = schema.get(low), schema.get(high)
    if lo is not None and hi is not None:
        return [f"{lo:,}-{hi:,} {unit}"]
    if lo is not None:
        return [f"at least {lo:,} {unit[:-1] if lo == 1 else unit}"]
    if hi is not None:
        return [f"at most {hi:,} {unit}"]
    return []


def _keys(properties: Mapping[str, Any], required: Iterable[str]) -> str:
    needed = set(required)
    parts = []
    for name, sub in properties.items():
        text = f"`{name}` ({type_of(sub)}"
        text += ", required)" if name in needed else ")"
        parts.append(text)
    return ", ".join(parts)


def _cell(text: str) -> str:
    """Text for a Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def arguments_table(app_id: str, schema: Mapping[str, Any]) -> list[str]:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    required = list(schema.get("required") or [])
    names = list(properties) + [r for r in required if r not in properties]
    if not names:
        return ["None: it takes no arguments."]
    lines = [
        "| Argument | Type | Required | Constraints | Description |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        sub = properties.get(name) or {}
        description = sub.get("description", "") if isinstance(sub, Mapping) else ""
        description = description or ARG_NOTES.get(app_id, {}).get(name, "")
        lines.append(
            "| "
            + " | ".join(
                [
                    f"`{name}`",
                    _cell(type_of(sub)),
                    "yes" if name in required else "no",
                    _cell("; ".join(constraints(sub))),
                    _cell(description),
                ]
            )
            + " |"
        )
    return lines


def argument_notes(spec: ModuleSpec) -> list[str]:
    """What the table cannot show: rules over several arguments, literal-only arguments."""
    schema = spec.args_schema
    notes: list[str] = []
    if isinstance(schema.get("description"), str):
        notes.append(schema["description"])  # a rule over several arguments, in words
    for combinator, word in (("anyOf", "at least one of"), ("oneOf", "exactly one of")):
        branches = schema.get(combinator)
        if notes or not isinstance(branches, list):
            continue
        if all(isinstance(b, Mapping) and set(b) == {"required"} for b in branches):
            groups = [" and ".join(f"`{n}`" for n in b["required"]) for b in branches]
            notes.append(f"Give {word}: {', '.join(groups)}.")
    if spec.literal_args:
        names = ", ".join(f"`{n}`" for n in spec.literal_args)
        notes.append(
            f"{names} must be literal: no `{{{{ }}}}` expressions there (they are code, and "
            "data must never become code)."
        )
    if schema.get("additionalProperties") is False and schema.get("properties"):
        notes.append("Any other argument is refused when the flow is saved.")
    return notes


def output_text(schema: Mapping[str, Any]) -> list[str]:
    if not schema:
        return ["Any JSON value (see the description)."]
    properties = schema.get("properties")
    if isinstance(properties, Mapping) and properties:
        lines = [f"An {type_of(schema)} with:", ""]
        for name, sub in properties.items():
            text = f"- `{name}` ({type_of(sub)})"
            described = sub.get("description") if isinstance(sub, Mapping) else None
            if described:
                text += f": {described}"
            lines.append(text)
        return lines
    return [f"An {type_of(schema)}; its fields are given in the description."]


def idempotency_text(spec: ModuleSpec) -> str:
    if spec.idempotent_when is None:
        return IDEMPOTENT if spec.idempotent else NOT_IDEMPOTENT
    return "Depends on the arguments: " + idempotency_rule(spec)


def idempotency_rule(spec: ModuleSpec) -> str:
    """The rule of ``idempotent_when`` in words: the description's sentences about it, else
    the rule function's docstring."""
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(spec.description.split()))
    about = [s for s in sentences if "idempotent" in s.lower()]
    if about:
        return " ".join(about)
    doc = inspect.getdoc(spec.idempotent_when)
    if doc:
        return " ".join(doc.split("\n\n", 1)[0].split())
    return "see the description."


def components_text(spec: ModuleSpec) -> list[str]:
    if not spec.components:
        return ["None."]
    builtin = {p.kind for p in PROVIDERS if p.builtin_default}
    lines = []
    for kind in spec.components:
        text = f"- `{kind}`"
        if kind in KINDS:
            text += f": {KINDS[kind]}"
        if kind in builtin:
            text += " Built in: works without configuring one."
        else:
            text += (
                " The company needs one (its default, or one named in the step's "
                "`componentConfigIds`)."
            )
        lines.append(text)
    return lines


# -- the page ---------------------------------------------------------------------------------

INTRO = """\
<!-- Generated by scripts/gen_module_docs.py from flow8.modules.default_registry(): do not
edit by hand. Run `python scripts/gen_module_docs.py` after changing a module. -->

# Module reference

Every step (flowlet) of a flow calls one **module**, named by its `appId`, with `args`. This
page lists every module flow8 ships, by category: what it does, its arguments, what it
outputs (what later steps read as `$prev.<ref>`), whether it is safe to run again after a
crash, the components it needs, and an example flowlet. How flows, expressions (`{{ }}`),
filters, retries and the rest work is told in [the flow language guide](flow-language.md).

In the examples, `$prev.<ref>` stands for the output of an earlier step with that `ref`, and
`$prev.args` for the play's input. The same catalog is served by `GET /api/modules` and
printed by `flow8 modules list --json` (with the full JSON Schemas).

**Idempotent** says what happens when the instance running a step stops in the middle of it
(a crash, a deploy): an idempotent step simply runs again; any other step fails as
*interrupted* instead of repeating a side effect, and the play can be retried from it.
**Metered** modules (AI calls) cost money: what each call spent is recorded, and budgets
bound it.
"""


def ordered_categories(registry: ModuleRegistry) -> list[tuple[str, list[ModuleSpec]]]:
    by_category: dict[str, list[ModuleSpec]] = {}
    for spec in registry:  # sorted by category, then appId
        by_category.setdefault(spec.category, []).append(spec)
    known = [c for c in CATEGORY_ORDER if c in by_category]
    others = sorted(c for c in by_category if c not in CATEGORY_ORDER)
    return [(c, by_category[c]) for c in known + others]


def render(registry: ModuleRegistry | None = None) -> str:
    """The whole of docs/modules.md."""
    registry = registry if registry is not None else default_registry()
    categories = ordered_categories(registry)
    lines = [INTRO, "## Contents", ""]
    for category, specs in categories:
        links = ", ".join(f"[`{s.app_id}`](#{_anchor(s.app_id)})" for s in specs)
        lines.append(f"- **{category}**: {links}")
    for category, specs in categories:
        lines += ["", f"## {category}"]
        for spec in specs:
            lines += ["", *module_section(spec)]
    return "\n".join(lines) + "\n"


def _anchor(app_id: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "", app_id.lower())


def module_section(spec: ModuleSpec) -> list[str]:
    args, source = example_args(spec)
    flowlet = {"ref": example_ref(spec.app_id), "appId": spec.app_id, "args": args}
    lines = [f"### {spec.app_id}", "", " ".join(spec.description.split()), ""]
    lines += ["**Arguments**", "", *arguments_table(spec.app_id, spec.args_schema)]
    notes = argument_notes(spec)
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    lines += ["", "**Output**", "", *output_text(spec.output_schema)]
    lines += ["", f"**Idempotent**: {idempotency_text(spec)}"]
    if spec.metered:
        lines += ["", f"**Metered**: {METERED}"]
    lines += ["", "**Components**", "", *components_text(spec)]
    lines += ["", "**Example**", ""]
    if source == "schema":
        lines += [
            "_Made up from the schema's required arguments: this module declares no "
            "example (`ModuleSpec.example`)._",
            "",
        ]
    body = json.dumps(flowlet, indent=2, ensure_ascii=False)
    lines += ["```json", body, "```"]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if docs/modules.md is not up to date"
    )
    options = parser.parse_args(argv)
    text = render()
    current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else None
    if options.check:
        if current != text:
            print(
                f"{TARGET.relative_to(ROOT)} is stale: run `python scripts/gen_module_docs.py`",
                file=sys.stderr,
            )
            return 1
        print(f"{TARGET.relative_to(ROOT)} is up to date")
        return 0
    if current != text:
        TARGET.write_text(text, encoding="utf-8")
        print(f"wrote {TARGET.relative_to(ROOT)} ({len(list(default_registry()))} modules)")
    else:
        print(f"{TARGET.relative_to(ROOT)} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
