"""attrs models <-> storage documents through one cattrs converter.

Storage keys are the attrs field names (snake_case); a field named ``id`` is stored as ``_id``;
datetimes stay datetimes (the store normalises them to aware UTC); enums become their values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .exceptions import InvalidDocument

T = TypeVar("T")

converter = cattrs.Converter()


def _unstructure_datetime(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise InvalidDocument(f"datetime {value!r} is naive; use a timezone-aware one")
    return value.astimezone(UTC)


def _structure_datetime(value: Any, _: type) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise TypeError(f"expected a datetime, got {type(value).__name__}")


converter.register_unstructure_hook(datetime, _unstructure_datetime)
converter.register_structure_hook(datetime, _structure_datetime)


def _has_id(cls: type) -> bool:
    return attrs.has(cls) and any(a.name == "id" for a in attrs.fields(cls))


converter.register_unstructure_hook_factory(
    _has_id,
    lambda cls: make_dict_unstructure_fn(cls, converter, id=override(rename="_id")),
)
converter.register_structure_hook_factory(
    _has_id,
    lambda cls: make_dict_structure_fn(cls, converter, id=override(rename="_id")),
)


def to_document(obj: Any) -> dict[str, Any]:
    """An attrs instance as a storage document (``id`` -> ``_id``)."""
    out = converter.unstructure(obj)
    if not isinstance(out, dict):
        raise InvalidDocument(f"{type(obj).__name__} does not unstructure to a document")
    return out


def from_document(cls: type[T], doc: dict[str, Any]) -> T:
    """Build ``cls`` from a stored document, ignoring storage-only keys it does not declare."""
    return converter.structure(doc, cls)
