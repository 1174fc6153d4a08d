"""Storage documents for flows, plays and layers (snake_case), and back."""

from __future__ import annotations

from typing import Any

from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

import actors

from flow8.domain import Flow, FlowDefinition, Play, PlayLayer, storage

# A stored play names its id `_id` and its state `status`; every other field is the attribute.
# The runtime fields the engine keeps beside them (lease, approvals, cancel request) are not
# part of `Play` and are simply not read. Generated once: reading a play (every GET of one)
# copies no dictionary.
_play_to_doc = make_dict_unstructure_fn(
    Play, storage, id=override(rename="_id"), state=override(rename="status")
)
_play_from_doc = make_dict_structure_fn(
    Play, storage, id=override(rename="_id"), state=override(rename="status")
)


def flow_definition_doc(definition: FlowDefinition) -> dict[str, Any]:
    doc: dict[str, Any] = storage.unstructure(definition)
    return doc


def flow_from_doc(doc: dict[str, Any]) -> Flow:
    return Flow(
        id=doc["flow_id"] if "flow_id" in doc else doc["_id"],
        company_id=doc["company_id"],
        version=doc["version"],
        definition=storage.structure(doc["definition"], FlowDefinition),
        created_at=doc["created_at"],
        updated_at=doc.get("updated_at", doc["created_at"]),
    )


def play_doc(play: Play) -> dict[str, Any]:
    doc: dict[str, Any] = _play_to_doc(play)
    return doc


def play_from_doc(doc: dict[str, Any]) -> Play:
    play: Play = _play_from_doc(doc, Play)
    return play


def layer_doc(layer: PlayLayer) -> dict[str, Any]:
    doc: dict[str, Any] = storage.unstructure(layer)
    doc["_id"] = layer.key
    doc["layer_id"] = layer.key.split(":", 1)[1]
    return doc


def layer_from_doc(doc: dict[str, Any]) -> PlayLayer:
    data = {k: v for k, v in doc.items() if k not in ("_id", "layer_id")}
    return storage.structure(data, PlayLayer)


MAX_ERROR_LENGTH = 2000


def error_text(text: str) -> str:
    """An error message as plays and layers store it: bounded, and always valid Unicode (a
    module's exception may quote data the store would refuse)."""
    return text[:MAX_ERROR_LENGTH].encode("utf-8", "replace").decode("utf-8")


def describe_crash(error: BaseException) -> str:
    """What a crashed play records of its cause: ``Type: message`` of the error (of the
    errors inside it, for an exception group), first line only."""
    lines = actors.describe(error).splitlines()
    return error_text(lines[0][:500] if lines else type(error).__name__)
