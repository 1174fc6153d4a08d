"""The two boundaries of flow8's data, one cattrs converter each.

* :data:`api` — camelCase JSON: REST request and response bodies, query parameters, flow
  files, WebSocket frames. Structuring is strict (a string is not a number, unknown keys are
  refused) and lists every problem at once as :class:`Problem` (``path`` in API spelling,
  ``flowlets[2].args.ms``), through :meth:`BoundaryConverter.parse`.
* :data:`storage` — snake_case documents as the store holds them (attribute names, plus the
  few renames stored documents have always used). Documents were written by flow8: they are
  read with cattrs' fast generated functions, without detailed validation.

Fields declare their rules with :func:`field` (lengths, bounds, patterns, a check of their
own); the same declaration drives the converter and the JSON Schema of the OpenAPI document
(``flow8.http``), so the two cannot disagree. Every fault has one wording, whoever finds it
(see :data:`MESSAGES`).
"""

from __future__ import annotations

import enum
import functools
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, NewType

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.fns import identity
from cattrs.gen import (
    make_dict_structure_fn,
    make_dict_structure_fn_from_attrs,
    make_dict_unstructure_fn,
    override,
)

from .exceptions import InvalidData, Problem

T = typing.TypeVar("T")

JsonData = NewType("JsonData", object)
"""A field holding JSON data as a user gave it (a play's input, a layer's output, a KV
value): any JSON in the schema, passed through as it is in both directions (never walked:
a 300,000-item input took 50 ms of the event loop per answer when it was)."""


@functools.cache
def camel(name: str) -> str:
    """``flow_version`` -> ``flowVersion``: the API spelling of an attribute name."""
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


# -- messages ----------------------------------------------------------------------------------
# One wording per fault, used by every model at every boundary (flow definitions, request
# bodies, query parameters). Messages follow the field's path: "flowlets[0].ref is required".

IS_REQUIRED = "is required"
UNKNOWN_FIELD = "is not allowed (unknown field)"
MUST_BE_OBJECT = "must be an object"
MUST_BE_ARRAY = "must be an array"
MUST_BE_STRING = "must be a string"
MUST_BE_BOOLEAN = "must be a boolean"
MUST_BE_INTEGER = "must be an integer"
MUST_BE_NUMBER = "must be a number"  # JSON numbers are finite: NaN and infinities are not
MUST_BE_DATETIME = "must be an RFC 3339 date-time with a UTC offset"
MUST_NOT_BE_BLANK = "must not be blank"
NOT_VALID = "is not valid"  # a fault no rule names (kept for completeness; not expected)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def must_be_one_of(values: Iterable[Any]) -> str:
    return "must be one of: " + ", ".join(_show(v) for v in values)


def too_short(n: int) -> str:
    return "must not be empty" if n == 1 else f"must be at least {n} characters"


def too_long(n: int) -> str:
    return f"must be at most {n} characters"


def must_match(pattern: str) -> str:
    return f"must match the pattern {pattern}"


def too_small(limit: float) -> str:
    return f"must be at least {_num(limit)}"


def too_large(limit: float) -> str:
    return f"must be at most {_num(limit)}"


def out_of_range(low: float, high: float) -> str:
    return f"must be between {_num(low)} and {_num(high)}"


def not_above(limit: float) -> str:
    return f"must be greater than {_num(limit)}"


def too_few_items(n: int) -> str:
    return f"must have at least {n} item{'' if n == 1 else 's'}"


def too_many_items(n: int) -> str:
    return f"must have at most {n} item{'' if n == 1 else 's'}"


def too_many_entries(n: int) -> str:
    return f"must have at most {n} entr{'y' if n == 1 else 'ies'}"


MESSAGES: Mapping[str, str] = {
    "missing field": IS_REQUIRED,
    "unknown field": UNKNOWN_FIELD,
    "not an object": MUST_BE_OBJECT,
    "not an array": MUST_BE_ARRAY,
    "not a string": MUST_BE_STRING,
    "not a boolean": MUST_BE_BOOLEAN,
    "not an integer": MUST_BE_INTEGER,
    "not a (finite) number": MUST_BE_NUMBER,
    "not a date-time": MUST_BE_DATETIME,
    "not an allowed value": must_be_one_of(["a", "b"]),
    "empty string": too_short(1),
    "string too short": too_short(10),
    "string too long": too_long(200),
    "blank string": MUST_NOT_BE_BLANK,
    "pattern": must_match("^[a-z]+$"),
    "number out of range": out_of_range(1, 100),
    "number too small": too_small(1),
    "number too large": too_large(100),
    "number not above": not_above(0),
    "too few items": too_few_items(1),
    "too many items": too_many_items(2),
    "too many entries": too_many_entries(20),
}
"""Every fault and its wording (filled in with example limits), for the docs and tests."""


class Invalid(ValueError):
    """One problem found while structuring a value; ``at`` is where, below that value."""

    def __init__(self, message: str, at: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.at = at


def invalid_many(problems: list[Invalid]) -> Exception:
    """Several problems of one value at once (raise the result)."""
    if len(problems) == 1:
        return problems[0]
    return ExceptionGroup("invalid value", problems)


# -- field rules -------------------------------------------------------------------------------

# Whitespace by both Python's and ECMAScript's definition, so the schema's pattern (NON_BLANK,
# what a client checks) and the converter (what the server checks) agree exactly on what
# counts as blank text.
NON_BLANK = (
    r"[^\t\n\x0b\x0c\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
)
_NON_BLANK = re.compile(NON_BLANK)


def is_blank(text: str) -> bool:
    """Whether ``text`` holds nothing but whitespace (see :data:`NON_BLANK`)."""
    return _NON_BLANK.search(text) is None


_META = "flow8"


@attrs.frozen
class Rules:
    """What a field declares beyond its type: JSON Schema keywords (checked by the API
    converter, published in the OpenAPI document) and boundary behaviour."""

    schema: Mapping[str, Any] = attrs.field(factory=dict)  # minLength, maximum, pattern, ...
    not_blank: bool = False  # a string with something other than whitespace
    check: Callable[[Any], str | None] | None = None  # a rule of its own: a message or None
    structure: Callable[[Any], Any] | None = None  # replaces the type's API hook entirely
    null_as_default: bool = False  # `null` in the API means "left out"
    required: bool | None = None  # API only; None: required iff the attribute has no default
    missing: Any = None  # the value of a field left out that is not required and has no default


NO_RULES = Rules()


def rules(
    *,
    min_length: int | None = None,
    max_length: int | None = None,
    not_blank: bool = False,
    pattern: str | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: float | None = None,
    fmt: str | None = None,
    min_items: int | None = None,
    max_items: int | None = None,
    max_properties: int | None = None,
    description: str | None = None,
    check: Callable[[Any], str | None] | None = None,
    structure: Callable[[Any], Any] | None = None,
    null_as_default: bool = False,
    required: bool | None = None,
    schema: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A field's boundary rules (see :class:`Rules`), as attrs metadata:
    ``ref: str = attrs.field(metadata=rules(max_length=100))``."""
    keywords = {
        "minLength": min_length,
        "maxLength": max_length,
        "pattern": pattern,
        "minimum": minimum,
        "maximum": maximum,
        "exclusiveMinimum": exclusive_minimum,
        "format": fmt,
        "minItems": min_items,
        "maxItems": max_items,
        "maxProperties": max_properties,
        "description": description,
    }
    found = {k: v for k, v in keywords.items() if v is not None}
    if not_blank:
        found.setdefault("pattern", NON_BLANK)
    found.update(schema or {})
    return {_META: Rules(found, not_blank, check, structure, null_as_default, required)}


def field(
    *,
    default: Any = attrs.NOTHING,
    factory: Callable[[], Any] | None = None,
    converter: Callable[[Any], Any] | None = None,
    **kw: Any,
) -> Any:
    """An attrs field with a default and its boundary rules (the keywords of :func:`rules`).
    A field without a default is written ``attrs.field(metadata=rules(...))``, which type
    checkers read as required."""
    extra: dict[str, Any] = {"metadata": rules(**kw)}
    if converter is not None:
        extra["converter"] = converter
    if factory is not None:
        return attrs.field(factory=factory, **extra)
    return attrs.field(default=default, **extra)


@attrs.frozen
class BoundaryField:
    """One attribute as the API sees it."""

    attribute: attrs.Attribute[Any]
    key: str  # its JSON name
    type: Any  # its resolved type
    rules: Rules
    required: bool

    @property
    def name(self) -> str:
        return self.attribute.name


@functools.cache
def api_fields(cls: type) -> tuple[BoundaryField, ...]:
    """The fields of an attrs class as the API reads and writes them (types resolved once)."""
    hints = typing.get_type_hints(cls)
    out = []
    for a in attrs.fields(cls):
        rules = a.metadata.get(_META, NO_RULES)
        required = rules.required
        if required is None:
            required = a.default is attrs.NOTHING
        out.append(BoundaryField(a, camel(a.name), hints[a.name], rules, required))
    return tuple(out)


def optional_inner(tp: Any) -> tuple[bool, Any]:
    """(whether ``tp`` admits None, ``tp`` without None)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != len(typing.get_args(tp)):
            inner = args[0] if len(args) == 1 else typing.Union[tuple(args)]  # noqa: UP007
            return True, inner
    return False, tp


def _rule_problem(rules: Rules, value: Any) -> str | None:
    """The first rule ``value`` (already of the field's type) breaks, or None."""
    s = rules.schema
    if isinstance(value, str):
        if "minLength" in s and len(value) < s["minLength"]:
            return too_short(s["minLength"])
        if "maxLength" in s and len(value) > s["maxLength"]:
            return too_long(s["maxLength"])
        if rules.not_blank and is_blank(value):
            return MUST_NOT_BE_BLANK
        if "pattern" in s and not rules.not_blank and not re.search(s["pattern"], value):
            return must_match(s["pattern"])
    elif isinstance(value, int | float) and not isinstance(value, bool):
        low, high = s.get("minimum"), s.get("maximum")
        if low is not None and high is not None:
            if not low <= value <= high:
                return out_of_range(low, high)
        elif low is not None and value < low:
            return too_small(low)
        elif high is not None and value > high:
            return too_large(high)
        if "exclusiveMinimum" in s and value <= s["exclusiveMinimum"]:
            return not_above(s["exclusiveMinimum"])
    elif isinstance(value, list | tuple) and "minItems" in s and len(value) < s["minItems"]:
        return too_few_items(s["minItems"])
    if rules.check is not None:
        return rules.check(value)
    return None


def _size_problem(rules: Rules, value: Any) -> str | None:
    """Size limits of containers, checked before their items are read (a list of a million
    bad items must not become a million problems)."""
    s = rules.schema
    if isinstance(value, list) and "maxItems" in s and len(value) > s["maxItems"]:
        return too_many_items(s["maxItems"])
    if isinstance(value, Mapping) and "maxProperties" in s and len(value) > s["maxProperties"]:
        return too_many_entries(s["maxProperties"])
    return None


# -- the converters ----------------------------------------------------------------------------


class BoundaryConverter(cattrs.Converter):
    """A cattrs converter that also turns its structuring errors into :class:`Problem` s."""

    def __init__(self, *, strict: bool) -> None:
        super().__init__(detailed_validation=strict, forbid_extra_keys=strict)
        # Plain values, so documents and JSON never carry enum instances.
        self.register_unstructure_hook_factory(_is_enum, lambda _cls: _enum_value)
        # StrEnum is also a str, whose identity hook would otherwise win in dispatch order.
        self.register_unstructure_hook(enum.StrEnum, _enum_value)

    def key(self, cls: type, name: str) -> str:
        """The document key of attribute ``name`` of ``cls`` at this boundary."""
        return name

    def parse(self, data: Any, cls: type[T]) -> T:
        """``data`` as a ``cls``, or :class:`InvalidData` listing every problem found."""
        try:
            return self.structure(data, cls)
        except _REFUSALS as e:
            raise InvalidData(self.problems(e)) from None

    def problems(self, error: BaseException, path: str = "") -> list[Problem]:
        """Every problem an error of :meth:`structure` holds, with its path."""
        found: list[Problem] = []
        self._walk(error, path, found)
        return found

    def _walk(self, e: BaseException, path: str, found: list[Problem]) -> None:
        if isinstance(e, ClassValidationError):
            for sub in e.exceptions:
                note = _note(sub, AttributeValidationNote)
                at = path if note is None else join(path, self.key(e.cl, note.name))
                self._walk(sub, at, found)
        elif isinstance(e, IterableValidationError):
            for sub in e.exceptions:
                item = _note(sub, IterableValidationNote)
                self._walk(sub, path if item is None else join(path, item.index), found)
        elif isinstance(e, ForbiddenExtraKeysError):
            for key in sorted(e.extra_fields):
                found.append(Problem(join(path, key), UNKNOWN_FIELD))
        elif isinstance(e, Invalid):
            found.append(Problem(join(path, *e.at), e.message))
        elif isinstance(e, KeyError):  # a generated function reading a required key
            found.append(Problem(path, IS_REQUIRED))
        elif isinstance(e, BaseExceptionGroup):
            for inner in e.exceptions:
                self._walk(inner, path, found)
        else:
            found.append(Problem(path, NOT_VALID))


# What structuring raises for bad data: cattrs' groups (of anything a hook raised, each with
# a note saying where) and our own refusals. Anything else is a bug, and is not hidden.
_REFUSALS = (Invalid, ExceptionGroup, ForbiddenExtraKeysError, KeyError)


def _note(e: BaseException, kind: type[Any]) -> Any:
    for note in getattr(e, "__notes__", ()):
        if note.__class__ is kind:
            return note
    return None


_KEY_SHOWN = 60  # a key quoted in a path: enough to recognise it, bounded whatever was sent


def join(path: str, *keys: str | int) -> str:
    """``flowlets`` + 2 + ``args`` -> ``flowlets[2].args``."""
    for key in keys:
        if isinstance(key, int):
            path = f"{path}[{key}]"
        else:
            key = key if len(key) <= _KEY_SHOWN else key[:_KEY_SHOWN] + "..."
            path = f"{path}.{key}" if path else key
    return path


def _is_enum(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, enum.Enum)


def _enum_value(e: enum.Enum) -> Any:
    return e.value


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


# -- the API converter: strict types, camelCase, every problem ---------------------------------


class ApiConverter(BoundaryConverter):
    def __init__(self) -> None:
        super().__init__(strict=True)
        for tp, hook in _PRIMITIVES.items():
            self.register_structure_hook(tp, hook)
        self.register_structure_hook(JsonData, _as_is)
        self.register_unstructure_hook(JsonData, identity)
        self.register_unstructure_hook(datetime, format_datetime)
        # Registered by class (singledispatch), like str and int: a StrEnum is also a str.
        for base in (enum.Enum, enum.StrEnum, enum.IntEnum):
            self.register_structure_hook(base, _structure_enum)
        self.register_structure_hook_factory(_is_literal, _literal_hook)
        self.register_structure_hook_factory(_is_union, self._union_hook)
        self.register_structure_hook_factory(_is_sequence, self._sequence_hook)
        self.register_structure_hook_factory(_is_mapping, self._mapping_hook)
        self.register_structure_hook_factory(attrs.has, self._attrs_structure)
        self.register_unstructure_hook_factory(_is_union, self._union_unstructure)
        self.register_unstructure_hook_factory(_is_sequence, self._sequence_unstructure)
        self.register_unstructure_hook_factory(attrs.has, self._attrs_unstructure)
        # Values of `Any` fields: what JSON can hold (string keys; sets and tuples as arrays).
        self.register_unstructure_hook_factory(_is_runtime_mapping, lambda _: self._any_mapping)
        self.register_unstructure_hook_factory(_is_runtime_collection, lambda _: self._any_list)

    def key(self, cls: type, name: str) -> str:
        return camel(name)

    def parse_text(self, values: Mapping[str, str], cls: type[T]) -> T:
        """A ``cls`` from text values by API key (URL query parameters): each is first read
        as its field's type (``"2"`` as an integer, ``"true"`` as a boolean), then the model
        is structured as from JSON; unknown keys are ignored. Problems are worded as for a
        JSON body."""
        data: dict[str, Any] = {}
        problems: list[Problem] = []
        model: type = cls
        for f in api_fields(model):
            raw = values.get(f.key)
            if raw is None:
                continue
            try:
                data[f.key] = _from_text(optional_inner(f.type)[1], raw)
            except Invalid as e:
                problems.append(Problem(f.key, e.message))
        try:
            result = self.structure(data, cls)
        except _REFUSALS as e:
            problems.extend(self.problems(e))
            raise InvalidData(problems) from None
        if problems:
            raise InvalidData(problems)
        return result

    # structuring

    def _union_hook(self, tp: Any) -> Callable[[Any, Any], Any]:
        optional, inner = optional_inner(tp)
        if not optional or _is_union(inner):
            raise TypeError(f"the API converter reads X | None, not {tp!r}")
        hook = self.get_structure_hook(inner)

        def structure_optional(value: Any, _: Any) -> Any:
            return None if value is None else hook(value, inner)

        return structure_optional

    def _sequence_hook(self, tp: Any) -> Callable[[Any, Any], Any]:
        origin = typing.get_origin(tp) or tp
        args = typing.get_args(tp)
        item = args[0] if args else Any
        hook = self.get_structure_hook(item)
        build: Callable[[list[Any]], Any] = list if origin in (list, typing.Sequence) else origin

        def structure_sequence(value: Any, _: Any) -> Any:
            if not isinstance(value, list | tuple):
                raise Invalid(MUST_BE_ARRAY)
            out = []
            errors = []
            for i, v in enumerate(value):
                try:
                    out.append(hook(v, item))
                except Exception as e:
                    e.add_note(IterableValidationNote(f"@ index {i}", i, item))
                    errors.append(e)
            if errors:
                raise IterableValidationError("invalid items", errors, tp)
            return build(out)

        return structure_sequence

    def _mapping_hook(self, tp: Any) -> Callable[[Any, Any], Any]:
        args = typing.get_args(tp)
        item = args[1] if len(args) == 2 else Any
        if args and args[0] not in (str, Any):
            raise TypeError(f"the API converter reads objects with string keys, not {tp!r}")
        hook = self.get_structure_hook(item)
        if item is Any:
            return _object_as_is

        def structure_mapping(value: Any, _: Any) -> dict[str, Any]:
            if not isinstance(value, Mapping):
                raise Invalid(MUST_BE_OBJECT)
            out = {}
            errors = []
            for k, v in value.items():
                try:
                    out[k] = hook(v, item)
                except Exception as e:
                    e.add_note(IterableValidationNote(f"@ key {k!r:.80}", k, item))
                    errors.append(e)
            if errors:
                raise IterableValidationError("invalid entries", errors, tp)
            return out

        return structure_mapping

    def _attrs_structure(self, cls: type) -> Callable[[Any, Any], Any]:
        fields = api_fields(cls)
        attributes = []
        overrides: dict[str, Any] = {}
        fills: dict[str, Any] = {}
        nullable = set()
        for f in fields:
            a = f.attribute.evolve(type=f.type)
            if f.required and a.default is not attrs.NOTHING:
                a = a.evolve(default=attrs.NOTHING)  # a default the API does not apply
            elif not f.required and a.default is attrs.NOTHING:
                fills[f.key] = f.rules.missing
                a = a.evolve(default=f.rules.missing)
            attributes.append(a)
            if f.rules.null_as_default:
                nullable.add(f.key)
            hook = self._field_hook(f) if f.rules is not NO_RULES else None
            overrides[f.name] = override(rename=f.key, struct_hook=hook)
        generated: Callable[[Any, Any], Any] = make_dict_structure_fn_from_attrs(
            attributes,
            cls,
            self,
            _cattrs_forbid_extra_keys=True,
            _cattrs_detailed_validation=True,
            **overrides,
        )

        def structure_object(value: Any, tp: Any) -> Any:
            if not isinstance(value, Mapping):
                raise Invalid(MUST_BE_OBJECT)
            if nullable:
                value = {k: v for k, v in value.items() if v is not None or k not in nullable}
            if fills:
                value = {**fills, **value}
            return generated(value, tp)

        return structure_object

    def _field_hook(self, f: BoundaryField) -> Callable[[Any, Any], Any]:
        rules = f.rules
        if rules.structure is not None:
            whole = rules.structure
            return lambda value, _: whole(value)
        hook = self.get_structure_hook(f.type)

        def structure_field(value: Any, tp: Any) -> Any:
            problem = _size_problem(rules, value)
            if problem is not None:
                raise Invalid(problem)
            result = hook(value, tp)
            if result is not None:
                problem = _rule_problem(rules, result)
                if problem is not None:
                    raise Invalid(problem)
            return result

        return structure_field

    # unstructuring

    def _union_unstructure(self, tp: Any) -> Callable[[Any], Any]:
        optional, inner = optional_inner(tp)
        hook = self.get_unstructure_hook(inner) if optional and not _is_union(inner) else None
        if hook is identity:
            return identity  # `str | None` and the like: written as they are, inline
        if hook is format_datetime:
            return _optional_datetime  # one call per field, not two
        if hook is None:
            return self.unstructure  # by the runtime class

        def unstructure_optional(value: Any) -> Any:
            return None if value is None else hook(value)

        return unstructure_optional

    def _sequence_unstructure(self, tp: Any) -> Callable[[Any], Any]:
        return self.gen_unstructure_iterable(tp, unstructure_to=list)  # JSON arrays

    def _attrs_unstructure(self, cls: type) -> Callable[[Any], Any]:
        names: dict[str, Any] = {a.name: override(rename=camel(a.name)) for a in attrs.fields(cls)}
        return make_dict_unstructure_fn(cls, self, **names)

    def _any_mapping(self, value: Mapping[Any, Any]) -> dict[str, Any]:
        return {str(k): self.unstructure(v) for k, v in value.items()}

    def _any_list(self, value: Iterable[Any]) -> list[Any]:
        return [self.unstructure(v) for v in value]


def format_datetime(value: datetime) -> str:
    """RFC 3339, UTC written ``Z``."""
    return value.isoformat().replace("+00:00", "Z")


def _optional_datetime(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _as_is(value: Any, _: Any) -> Any:
    return value


def _object_as_is(value: Any, _: Any) -> Any:
    if not isinstance(value, Mapping):
        raise Invalid(MUST_BE_OBJECT)
    return dict(value)


def _structure_str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(MUST_BE_STRING)
    return value


def _structure_bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(MUST_BE_BOOLEAN)
    return value


def _structure_int(value: Any, _: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(MUST_BE_INTEGER)
    return value


def _structure_float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Invalid(MUST_BE_NUMBER)
    return float(value)


def _structure_datetime(value: Any, _: Any) -> datetime:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Invalid(MUST_BE_DATETIME)
    return moment


_PRIMITIVES: dict[Any, Callable[[Any, Any], Any]] = {
    str: _structure_str,
    bool: _structure_bool,
    int: _structure_int,
    float: _structure_float,
    datetime: _structure_datetime,
}


def _from_text(tp: Any, raw: str) -> Any:
    """A query parameter as the JSON value its field's type reads."""
    if tp is int:
        try:
            return int(raw)
        except ValueError:
            raise Invalid(MUST_BE_INTEGER) from None
    if tp is float:
        try:
            return float(raw)
        except ValueError:
            raise Invalid(MUST_BE_NUMBER) from None
    if tp is bool:
        word = raw.lower()
        if word not in ("true", "false", "1", "0"):
            raise Invalid(MUST_BE_BOOLEAN)
        return word in ("true", "1")
    return raw  # strings, enums, literals, date-times: read from their text by their hooks


@functools.cache
def _enum_values(cls: type[enum.Enum]) -> tuple[dict[Any, enum.Enum], str]:
    return {m.value: m for m in cls}, must_be_one_of(m.value for m in cls)


def _structure_enum(value: Any, cls: type[enum.Enum]) -> Any:
    by_value, message = _enum_values(cls)
    found = None
    if isinstance(value, str | int) and not isinstance(value, bool):
        found = by_value.get(value)
    if found is None:
        raise Invalid(message)
    return found


def _is_literal(tp: Any) -> bool:
    return typing.get_origin(tp) is typing.Literal


def _literal_hook(tp: Any) -> Callable[[Any, Any], Any]:
    allowed = typing.get_args(tp)
    message = must_be_one_of(allowed)

    def structure_literal(value: Any, _: Any) -> Any:
        for a in allowed:
            if value == a and type(value) is type(a):
                return value
        raise Invalid(message)

    return structure_literal


_SEQUENCES = (list, tuple, set, frozenset, typing.Sequence)


def _is_sequence(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is tuple:
        args = typing.get_args(tp)
        return len(args) == 2 and args[1] is Ellipsis
    return origin in (list, set, frozenset) or tp in (list, set, frozenset)


def _is_mapping(tp: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    return origin in (dict, Mapping, typing.Mapping) or (
        isinstance(origin, type) and origin is not str and issubclass(origin, Mapping)
    )


def _is_runtime_mapping(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, dict) and not attrs.has(cls)


def _is_runtime_collection(cls: Any) -> bool:
    return isinstance(cls, type) and cls in (list, tuple, set, frozenset)


# -- the storage converter: documents as stored ------------------------------------------------


class StorageConverter(BoundaryConverter):
    """snake_case documents (attribute names), read without detailed validation: stored
    documents were written by flow8. A few classes keep the renames their documents have
    always had (:meth:`store_as`)."""

    def __init__(self) -> None:
        super().__init__(strict=False)
        self._renames: dict[type, dict[str, str]] = {}

    def store_as(
        self,
        cls: type,
        renames: Mapping[str, str],
        *,
        as_is: Iterable[str] = (),
        omit_default: Iterable[str] = (),
    ) -> None:
        """Store ``cls`` with some attributes under other keys, some (JSON data already)
        taken as they are, never walked: a 100,000-item output is not copied item by item;
        and some left out while they hold their default (rarely set fields)."""
        self._renames[cls] = dict(renames)
        kw: dict[str, Any] = {name: override(rename=key) for name, key in renames.items()}
        unkw: dict[str, Any] = dict(kw)
        for name in as_is:
            unkw[name] = override(rename=renames.get(name), unstruct_hook=identity)
        for name in omit_default:
            unkw[name] = override(rename=renames.get(name), omit_if_default=True)
        self.register_unstructure_hook(cls, make_dict_unstructure_fn(cls, self, **unkw))
        self.register_structure_hook(cls, make_dict_structure_fn(cls, self, **kw))

    def key(self, cls: type, name: str) -> str:
        return self._renames.get(cls, {}).get(name, name)


api = ApiConverter()
"""camelCase JSON for the REST API, WebSocket events and flow files (strict)."""

storage = StorageConverter()
"""snake_case documents for the store (attribute names as they are)."""
