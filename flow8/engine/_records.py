"""Storage documents for flows, plays and layers (snake_case), and back."""

from __future__ import annotations

from typing import Any

from flow8.domain import Flow, FlowDefinition, Play, PlayLayer, storage

PLAY_RUNTIME_FIELDS = (
    "lease_owner",
    "lease_expires_at",
    "max_concurrent",
    "cancel_requested",
    "approvals",
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
    doc: dict[str, Any] = storage.unstructure(play)
    doc["_id"] = doc.pop("id")
    doc["status"] = doc.pop("state")
    return doc


def play_from_doc(doc: dict[str, Any]) -> Play:
    data = {k: v for k, v in doc.items() if k not in PLAY_RUNTIME_FIELDS}
    data["id"] = data.pop("_id")
    data["state"] = data.pop("status")
    data.pop("company_id_", None)
    return storage.structure(data, Play)


def layer_doc(layer: PlayLayer) -> dict[str, Any]:
    doc: dict[str, Any] = storage.unstructure(layer)
    doc["_id"] = layer.key
    doc["layer_id"] = layer.key.split(":", 1)[1]
    return doc


def layer_from_doc(doc: dict[str, Any]) -> PlayLayer:
    data = {k: v for k, v in doc.items() if k not in ("_id", "layer_id")}
    return storage.structure(data, PlayLayer)
