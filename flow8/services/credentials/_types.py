"""Credential types: the data fields each holds, their limits, and the JSON Schema of both.

One table (`RULES`) drives the validation here and the JSON Schema the API publishes, so a body
the schema accepts is a body the service accepts. Patterns are applied with Python's
`re.search`, as JSON Schema validators and schemathesis apply them; `END` stands for the true
end of the string because `$` also matches before a final newline.

Every problem names the field and never repeats the value: these values are secrets. Keys a
type does not have are not repeated either (a secret pasted as a key); generic field names are
names, shown in every answer, so they are.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from flow8.services.identity import NON_BLANK

from .exceptions import InvalidCredential, Problem

CredentialType = Literal["apiKey", "basic", "bearer", "oauth2", "generic"]
TYPES: tuple[str, ...] = typing.get_args(CredentialType)

END = r"(?![\s\S])"
FIELD_NAME = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}" + END
HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+" + END
HTTP_URL = r"^https?://[^\x00-\x20/?#][^\x00-\x20]*" + END
NO_SPACE = r"^[^\x00-\x20]+" + END

NAME_MAX = 128
DESCRIPTION_MAX = 1000
GENERIC_MAX_FIELDS = 16
GENERIC_MAX_VALUE = 4000
PATCH_MAX_FIELDS = 32
PATCH_MAX_VALUE = 16384
LIST_MAX_ITEMS = 64
LIST_MAX_ITEM = 256
# Characters of field names and values together; the per-field limits keep every type within it.
MAX_DATA_CHARS = 64 * 1024


@attrs.frozen
class FieldRule:
    """One data field of a type: a non-empty string (or, `is_list`, an array of them)."""

    name: str
    required: bool
    max_length: int
    pattern: str | None = None
    hint: str = ""  # what `pattern` demands, for the error message
    is_list: bool = False


def _field(name: str, required: bool, max_length: int, **kw: Any) -> FieldRule:
    return FieldRule(name, required, max_length, **kw)


RULES: Mapping[str, tuple[FieldRule, ...]] = {
    "apiKey": (
        _field("key", True, 8192),
        _field("header", False, 128, pattern=HEADER_NAME, hint="an HTTP header name"),
        # Sent as this query parameter instead of a header (an API that wants ?api_key=).
        _field("query", False, 128, pattern=NO_SPACE, hint="a query parameter name"),
    ),
    "basic": (_field("username", True, 1024), _field("password", True, 4096)),
    "bearer": (_field("token", True, 16384),),
    "oauth2": (
        _field("clientId", True, 1024),
        _field("clientSecret", True, 4096),
        _field("accessToken", False, 16384),
        _field("refreshToken", False, 16384),
        _field("tokenUrl", False, 2048, pattern=HTTP_URL, hint="an http(s) URL"),
        # A preset's URLs and default scopes (`_oauth_providers`); tokenUrl, authorizeUrl and
        # scopes given here win over it, and without a preset they are the whole story.
        _field(
            "provider",
            False,
            32,
            pattern=r"^(microsoft|google|slack|github)" + END,
            hint="one of microsoft, google, slack, github",
        ),
        _field("authorizeUrl", False, 2048, pattern=HTTP_URL, hint="an http(s) URL"),
        _field(
            "grant",
            False,
            32,
            pattern=r"^(authorizationCode|clientCredentials)" + END,
            hint="authorizationCode or clientCredentials",
        ),
        _field(
            "scopes",
            False,
            LIST_MAX_ITEM,
            pattern=NO_SPACE,
            hint="a scope without spaces",
            is_list=True,
        ),
    ),
}


def _path(key: object) -> str:
    # A field name that is not a valid name is not repeated either: it may be a pasted secret.
    if isinstance(key, str) and re.search(FIELD_NAME, key):
        return f"data.{key}"
    return "data"


def _bad_name_problem() -> Problem:
    return Problem(
        "data",
        "field names are 1 to 64 letters, digits, '_' or '-', starting with a letter or '_'",
    )


def _string_problem(
    value: Any, min_length: int, max_length: int, pattern: str | None, hint: str
) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if not min_length <= len(value) <= max_length:
        return f"must be {min_length} to {max_length} characters"
    if pattern is not None and not re.search(pattern, value):
        return f"must be {hint}"
    return None


def _rule_problem(rule: FieldRule, value: Any) -> str | None:
    if not rule.is_list:
        return _string_problem(value, 1, rule.max_length, rule.pattern, rule.hint)
    if not isinstance(value, list):
        return "must be an array of strings"
    if len(value) > LIST_MAX_ITEMS:
        return f"must have at most {LIST_MAX_ITEMS} items"
    for item in value:
        problem = _string_problem(item, 1, rule.max_length, rule.pattern, rule.hint)
        if problem is not None:
            return f"every item {problem}"
    return None


def _typed_problems(type_: str, data: Mapping[Any, Any]) -> list[Problem]:
    rules = {r.name: r for r in RULES[type_]}
    problems: list[Problem] = []
    # A key the type does not have is not named: it may be a secret pasted in the wrong place.
    unknown = sum(1 for key in data if key not in rules)
    if unknown:
        allowed = ", ".join(rules)
        message = f"{unknown} field(s) that {type_} does not have (its fields: {allowed})"
        problems.append(Problem("data", message))
    for rule in rules.values():
        if rule.name not in data:
            if rule.required:
                problems.append(Problem(f"data.{rule.name}", "required"))
            continue
        problem = _rule_problem(rule, data[rule.name])
        if problem is not None:
            problems.append(Problem(f"data.{rule.name}", problem))
    return problems


def _generic_problems(data: Mapping[Any, Any]) -> list[Problem]:
    problems: list[Problem] = []
    if len(data) > GENERIC_MAX_FIELDS:
        problems.append(Problem("data", f"must have at most {GENERIC_MAX_FIELDS} fields"))
    for key, value in data.items():
        if not isinstance(key, str) or not re.search(FIELD_NAME, key):
            problems.append(_bad_name_problem())
            continue
        problem = _string_problem(value, 0, GENERIC_MAX_VALUE, None, "")
        if problem is not None:
            problems.append(Problem(_path(key), problem))
    return problems


def data_chars(data: Mapping[str, Any]) -> int:
    total = 0
    for key, value in data.items():
        total += len(key)
        total += sum(map(len, value)) if isinstance(value, list) else len(value)
    return total


def check_type(type_: Any) -> str:
    if type_ not in TYPES:
        raise InvalidCredential([Problem("type", f"must be one of {', '.join(TYPES)}")])
    return str(type_)


def check_data(type_: str, data: Any) -> dict[str, Any]:
    """A clean copy of `data` if it is valid for `type_`; else every problem at once."""
    check_type(type_)
    if not isinstance(data, Mapping):
        raise InvalidCredential([Problem("data", "must be an object")])
    problems = _generic_problems(data) if type_ == "generic" else _typed_problems(type_, data)
    if not problems and data_chars(data) > MAX_DATA_CHARS:
        problems.append(Problem("data", f"must hold at most {MAX_DATA_CHARS} characters"))
    if problems:
        raise InvalidCredential(problems)
    return {k: list(v) if isinstance(v, list) else v for k, v in data.items()}


def _patch_value_problem(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        if len(value) > LIST_MAX_ITEMS:
            return f"must have at most {LIST_MAX_ITEMS} items"
        if any(not isinstance(v, str) or len(v) > LIST_MAX_ITEM for v in value):
            return f"every item must be a string of at most {LIST_MAX_ITEM} characters"
        return None
    return _string_problem(value, 0, PATCH_MAX_VALUE, None, "")


def merge_data(type_: str, stored: Mapping[str, Any], patch: Any) -> dict[str, Any]:
    """`stored` with `patch` applied: a value replaces, null removes, an absent key keeps
    its stored value. The result is validated as a whole for `type_`."""
    if not isinstance(patch, Mapping):
        raise InvalidCredential([Problem("data", "must be an object")])
    problems: list[Problem] = []
    if len(patch) > PATCH_MAX_FIELDS:
        problems.append(Problem("data", f"must have at most {PATCH_MAX_FIELDS} fields"))
    for key, value in patch.items():
        if not isinstance(key, str) or not re.search(FIELD_NAME, key):
            problems.append(_bad_name_problem())
            continue
        problem = _patch_value_problem(value)
        if problem is not None:
            problems.append(Problem(_path(key), problem))
    if problems:
        raise InvalidCredential(problems)
    merged = dict(stored)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return check_data(type_, merged)


def check_name(name: Any) -> str:
    if not isinstance(name, str):
        raise InvalidCredential([Problem("name", "must be a string")])
    value = name.strip()
    if not 1 <= len(name) <= NAME_MAX or not re.search(NON_BLANK, name):
        raise InvalidCredential([Problem("name", f"must be 1 to {NAME_MAX} characters, not blank")])
    return value


def check_description(description: Any) -> str | None:
    if description is None:
        return None
    if not isinstance(description, str):
        raise InvalidCredential([Problem("description", "must be a string or null")])
    if len(description) > DESCRIPTION_MAX:
        message = f"must be at most {DESCRIPTION_MAX} characters"
        raise InvalidCredential([Problem("description", message)])
    return description or None


# -- JSON Schema (what the API publishes) ------------------------------------------------------


def _rule_schema(rule: FieldRule) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": rule.max_length}
    if rule.pattern is not None:
        item["pattern"] = rule.pattern
    if rule.is_list:
        return {"type": "array", "items": item, "maxItems": LIST_MAX_ITEMS}
    return item


def data_schema(type_: str) -> dict[str, Any]:
    """The JSON Schema of a `type_` credential's data, as `check_data` enforces it."""
    if type_ == "generic":
        return {
            "type": "object",
            "maxProperties": GENERIC_MAX_FIELDS,
            "propertyNames": {"pattern": FIELD_NAME},
            "additionalProperties": {"type": "string", "maxLength": GENERIC_MAX_VALUE},
        }
    rules = RULES[type_]
    return {
        "type": "object",
        "properties": {r.name: _rule_schema(r) for r in rules},
        "required": [r.name for r in rules if r.required],
        "additionalProperties": False,
    }


def patch_schema() -> dict[str, Any]:
    """The JSON Schema of an update's `data`; the merged result must then fit the type."""
    return {
        "type": "object",
        "maxProperties": PATCH_MAX_FIELDS,
        "propertyNames": {"pattern": FIELD_NAME},
        "additionalProperties": {
            "anyOf": [
                {"type": "string", "maxLength": PATCH_MAX_VALUE},
                {
                    "type": "array",
                    "items": {"type": "string", "maxLength": LIST_MAX_ITEM},
                    "maxItems": LIST_MAX_ITEMS,
                },
                {"type": "null"},
            ]
        },
    }
