"""Value rules shared by every backend, and the JSON encoding the sqlite backend stores.

Documents are checked and normalised once, before either backend sees them, so both refuse the
same input with the same error. The sqlite encoding keeps every value directly comparable in
SQL: a datetime becomes the text ``"\\x01D" + ISO-8601 (UTC, milliseconds, fixed width)`` so
dates sort among themselves and sit in a range no user string can reach, because a user string
that itself starts with ``\\x01`` is stored with one more ``\\x01`` in front.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from .exceptions import InvalidDocument

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 100
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

MARK = "\x01"
DATE_PREFIX = "\x01D"
DATE_END = "\x01E"  # every encoded datetime is >= DATE_PREFIX and < DATE_END


# A lone UTF-16 surrogate is a str to Python (json.loads makes one of "\\udfff") but no UTF-8
# encoder takes it, so such text would fail in the backend's driver, far from its cause.
_SURROGATE = re.compile("[\ud800-\udfff]")


def invalid_text(text: str) -> str | None:
    """Why ``text`` is not valid Unicode text, or None when it is.

    ASCII text (most of it) is recognised in constant time: CPython records it per string.
    """
    if text.isascii():
        return None
    found = _SURROGATE.search(text)
    if found is None:
        return None
    return (
        f"text is not valid Unicode: a lone surrogate (\\u{ord(found.group()):04x}) at "
        f"character {found.start()}"
    )


def invalid_text_in(value: Any, path: str = "") -> tuple[str, str] | None:
    """(path, problem) of the first key or string in a JSON-like value that is not valid
    Unicode text, or None. Paths read like ``items[2].name`` (empty for the value itself)."""
    if isinstance(value, str):
        problem = invalid_text(value)
        return None if problem is None else (path, problem)
    if isinstance(value, Mapping):
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            if isinstance(k, str) and (problem := invalid_text(k)) is not None:
                return (path, f"a field name: {problem}")
            found = invalid_text_in(v, sub)
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = invalid_text_in(v, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def check_key(key: object, where: str) -> str:
    if not isinstance(key, str):
        raise InvalidDocument(f"{where}: field names must be strings, got {type(key).__name__}")
    if not key:
        raise InvalidDocument(f"{where}: empty field name")
    if key.startswith("$"):
        raise InvalidDocument(f"{where}: field name {key!r} starts with '$'")
    if "." in key:
        raise InvalidDocument(f"{where}: field name {key!r} contains '.'")
    if "\x00" in key:
        raise InvalidDocument(f"{where}: field name {key!r} contains NUL")
    problem = invalid_text(key)
    if problem is not None:
        raise InvalidDocument(f"{where}: field name {problem}")
    return key


def normalize_datetime(value: datetime, where: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidDocument(f"{where}: datetime {value!r} is naive; use a timezone-aware one")
    if value.tzinfo is UTC and value.microsecond % 1000 == 0:
        return value
    value = value.astimezone(UTC)
    # MongoDB keeps milliseconds; both backends truncate alike so equality agrees.
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


class _Bad(Exception):
    """Raised deep inside a value; collects the path on the way out (no cost on success)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []


# Field names repeat from document to document: one set lookup replaces the five checks.
_GOOD_KEYS: set[str] = set()
_GOOD_KEYS_MAX = 50_000


def _remember_good_key(key: str) -> None:
    if len(_GOOD_KEYS) >= _GOOD_KEYS_MAX:  # free-form keys (user data) must not grow it forever
        _GOOD_KEYS.clear()
    _GOOD_KEYS.add(key)


class _PreparedDict(dict[str, Any]):
    """A value `prepare_value` has normalised: taken as it is when it is stored."""

    __slots__ = ("marked",)
    marked: bool


class _PreparedList(list[Any]):
    __slots__ = ("marked",)
    marked: bool


_PREPARED = (_PreparedDict, _PreparedList)
# Depth at which a prepared value sits in the documents it goes into (a layer's `output`, or
# `sealed.output`): counted in, so that the document as a whole stays within MAX_DEPTH.
PREPARED_AT_DEPTH = 2


def prepare_value(value: Any, where: str) -> Any:
    """Normalise ``value`` ahead of storing it, for a caller that does so off the event loop
    (a big step output in a worker thread): the store then takes it as it is, without a
    second walk on the loop. Raises InvalidDocument naming the path under ``where``.
    Scalars come back as they are; an object or array as a prepared copy."""
    marks = [False]
    try:
        normalized = _norm(value, marks, PREPARED_AT_DEPTH)
    except _Bad as e:
        raise InvalidDocument(f"{where}{''.join(reversed(e.path))}: {e.message}") from None
    if isinstance(normalized, dict):
        prepared: _PreparedDict | _PreparedList = _PreparedDict(normalized)
    elif isinstance(normalized, list):
        prepared = _PreparedList(normalized)
    else:
        return normalized
    prepared.marked = marks[0]
    return prepared


def _too_wide(value: int) -> str:
    # Never the digits themselves: an integer of a few thousand digits cannot even be turned
    # into text (Python refuses past 4300), and the message must not carry the data.
    if value.bit_length() < 200:
        return f"integer {value} does not fit in 64 bits"
    return f"an integer of {value.bit_length()} bits does not fit in 64 bits"


def _norm(value: Any, marks: list[bool], depth: int) -> Any:
    t = type(value)
    if t is str:
        if not value.isascii() and (problem := invalid_text(value)) is not None:
            raise _Bad(problem)
        if value and value[0] == MARK:
            marks[0] = True
        return value
    if t is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise _Bad(_too_wide(value))
        return value
    if t is float:
        if not math.isfinite(value):
            raise _Bad(f"{value} is not a finite number")
        return value
    if value is None or t is bool:
        return value
    if t is _PreparedDict or t is _PreparedList:  # normalised already (off the loop)
        if value.marked:
            marks[0] = True
        return value
    if depth > MAX_DEPTH:
        raise _Bad(f"nested deeper than {MAX_DEPTH} levels")
    if t is dict or isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k not in _GOOD_KEYS:
                if (
                    type(k) is not str
                    or not k
                    or k[0] == "$"
                    or "." in k
                    or "\x00" in k
                    or not k.isascii()
                ):
                    try:
                        check_key(k, "")
                    except InvalidDocument as e:
                        raise _Bad(str(e)[2:]) from None
                _remember_good_key(k)
            # Strings, nulls, booleans and numbers in range are most of a document: taken
            # here, without a call.
            tv = type(v)
            if tv is str:
                if not v.isascii() and (problem := invalid_text(v)) is not None:
                    bad = _Bad(problem)
                    bad.path.append(f".{k}")
                    raise bad
                if v and v[0] == MARK:
                    marks[0] = True
                out[k] = v
            elif (
                v is None
                or tv is bool
                or (tv is int and INT64_MIN <= v <= INT64_MAX)
                or (tv is float and math.isfinite(v))
            ):
                out[k] = v
            else:  # containers, datetimes, subclasses, and bad numbers (refused by name)
                try:
                    out[k] = _norm(v, marks, depth + 1)
                except _Bad as e:
                    e.path.append(f".{k}")
                    raise
        return out
    if t is list or t is tuple:
        items = []
        for i, v in enumerate(value):
            try:
                items.append(_norm(v, marks, depth + 1))
            except _Bad as e:
                e.path.append(f"[{i}]")
                raise
        return items
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise _Bad(f"datetime {value!r} is naive; use a timezone-aware one")
        return normalize_datetime(value, "")
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return _norm(str(value), marks, depth)
    if isinstance(value, int):
        return _norm(int(value), marks, depth)
    if isinstance(value, float):
        return _norm(float(value), marks, depth)
    raise _Bad(f"unsupported value type {type(value).__name__}")


def normalize_document(value: Any, where: str) -> tuple[Any, bool]:
    """Return (normalised copy, whether some string starts with the storage mark).

    Raises InvalidDocument naming the offending path.
    """
    marks = [False]
    try:
        return _norm(value, marks, 0), marks[0]
    except _Bad as e:
        raise InvalidDocument(f"{where}{''.join(reversed(e.path))}: {e.message}") from None


def check_storable(value: Any, where: str) -> None:
    """Raise InvalidDocument (naming the path under ``where``) unless ``value`` is one the
    store accepts as a field's value: for callers that must know before they act on it."""
    normalize_document(value, where)


def normalize_value(value: Any, where: str) -> Any:
    """Return a normalised copy of ``value``; raise InvalidDocument naming what is wrong."""
    return normalize_document(value, where)[0]


def format_datetime(value: datetime) -> str:
    v = value.astimezone(UTC)
    return (
        f"{DATE_PREFIX}{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:"
        f"{v.second:02d}.{v.microsecond // 1000:03d}Z"
    )


def parse_datetime(text: str) -> datetime:
    body = text[len(DATE_PREFIX) :]
    return datetime(
        int(body[0:4]),
        int(body[5:7]),
        int(body[8:10]),
        int(body[11:13]),
        int(body[14:16]),
        int(body[17:19]),
        int(body[20:23]) * 1000,
        tzinfo=UTC,
    )


def to_storage(value: Any) -> Any:
    """Encode a normalised value for JSON storage (see module docstring)."""
    if isinstance(value, str):
        return MARK + value if value.startswith(MARK) else value
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, dict):
        return {k: to_storage(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_storage(v) for v in value]
    return value


def from_storage(value: Any) -> Any:
    if isinstance(value, str):
        if value.startswith(MARK):
            if value.startswith(DATE_PREFIX):
                return parse_datetime(value)
            return value[1:]
        return value
    if isinstance(value, dict):
        return {k: from_storage(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_storage(v) for v in value]
    return value


def _date_hook(value: Any) -> str:
    if isinstance(value, datetime):
        return format_datetime(value)
    raise TypeError(f"{type(value).__name__} is not storable")


def _json(value: Any) -> str:
    """Compact UTF-8 JSON, datetimes through `_date_hook`.

    orjson writes a play or an audit entry in 0.5-1.8 us where `json` takes ~5 us, and the
    store's writer thread holds the GIL while it encodes, so the event loop waits that long
    per document. For normalised documents it writes what `json` writes, but for the spelling
    of some exponents (1e-7 for 1e-07: the same number); `json` remains for whatever orjson
    refuses, so a refusal is still `json`'s error, the one callers expect.
    """
    try:
        return orjson.dumps(value, default=_date_hook, option=_ORJSON_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_date_hook)


_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME  # datetimes take the storage form, not ISO


def dumps(value: Any, *, marked: bool | None = None) -> str:
    """Storage JSON of a normalised value (compact, UTF-8).

    ``marked`` says whether some string starts with the storage mark (None: unknown). Without
    marked strings, the encoder does the whole job, datetimes via a hook.
    """
    if not marked:
        text = _json(value)
        # control characters are always escaped, so this finds every marked string
        if marked is False or "\\u0001" not in text:
            return text
    return _json(to_storage(value))


def loads(text: str) -> Any:
    # orjson parses about 3x faster than `json` (every read pays this). Safe here, unlike on
    # input from outside: what `dumps` wrote holds no integer beyond 64 bits (which orjson
    # would turn into a float) and no non-finite number.
    value = orjson.loads(text)
    return from_storage(value) if "\\u0001" in text else value


def check_size(where: str, *texts: str) -> None:
    """Refuse a document whose JSON ``texts`` (stored together) exceed 16 MB."""
    # JSON length is a close, conservative stand-in for BSON size for the 16 MB limit.
    # a character is at most 4 bytes in UTF-8: only long texts need encoding to measure
    if sum(map(len, texts)) > MAX_DOCUMENT_BYTES // 4 and (
        sum(len(t.encode()) for t in texts) > MAX_DOCUMENT_BYTES
    ):
        raise InvalidDocument(f"{where}: document is larger than 16 MB")


def utcnow() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def ttl_cutoff(now: datetime, expire_after_seconds: int) -> datetime:
    """Documents whose TTL field is before this instant are expired."""
    return now - timedelta(seconds=expire_after_seconds)
