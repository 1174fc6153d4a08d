"""Storage documents for flows, plays and layers (snake_case), and back."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

import actors
from flow8.domain import Flow, FlowDefinition, Play, PlayLayer, storage

# The storage converter knows the documents' shapes (``flow8.domain``: a play's `_id` and
# `status`, data fields taken as they are). Its generated functions are fetched once: reading
# a play (every GET of one) is one call, no dispatch and no dictionary copied.
_play_to_doc = storage.get_unstructure_hook(Play)
_play_from_doc = storage.get_structure_hook(Play)
_layer_to_doc = storage.get_unstructure_hook(PlayLayer)
_layer_from_doc = storage.get_structure_hook(PlayLayer)
_definition_to_doc = storage.get_unstructure_hook(FlowDefinition)
_definition_from_doc = storage.get_structure_hook(FlowDefinition)


def flow_definition_doc(definition: FlowDefinition) -> dict[str, Any]:
    doc: dict[str, Any] = _definition_to_doc(definition)
    return doc


def flow_from_doc(doc: dict[str, Any]) -> Flow:
    """A stored flow version (``flow_versions``: its flow's id in ``flow_id``) or head
    (``flows``: in ``_id``)."""
    return Flow(
        id=doc["flow_id"] if "flow_id" in doc else doc["_id"],
        company_id=doc["company_id"],
        version=doc["version"],
        definition=_definition_from_doc(doc["definition"], FlowDefinition),
        created_at=doc["created_at"],
        updated_at=doc.get("updated_at", doc["created_at"]),
    )


# Play data at rest (see flow8.engine._redact and EngineSettings.encrypt_play_data): a play's
# input and output, and a layer's arguments and output, are stored either as plain fields or,
# encrypted, in the secret field `data`; a record whose data was masked keeps the real data
# in the secret field `sealed`, which only the engine reads (to resume with real values).
PLAY_DATA = ("input", "output")
LAYER_DATA = ("args", "output", "calls")


def seal(doc: dict[str, Any], fields: tuple[str, ...], *, encrypt: bool, real: Any = None) -> None:
    """Move ``fields`` of ``doc`` into ``data`` when ``encrypt``; keep ``real`` (the same
    fields before masking) in ``sealed`` when given."""
    if encrypt:
        doc["data"] = {f: doc.pop(f, None) for f in fields}
    if real is not None:
        doc["sealed"] = {f: getattr(real, f) for f in fields}


def _unsealed(doc: dict[str, Any], real: bool) -> dict[str, Any]:
    """The document with its data fields as stored in ``data`` or, for the engine,
    ``sealed``; plain documents are returned as they are."""
    packed = doc.get("sealed") if real else None
    if packed is None:
        packed = doc.get("data")
    if packed is None:
        return doc
    return {**doc, **packed}


def play_doc(play: Play, *, encrypt: bool = False, real: Play | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = _play_to_doc(play)
    if encrypt or real is not None:
        seal(doc, PLAY_DATA, encrypt=encrypt, real=real)
    return doc


def play_from_doc(doc: dict[str, Any], *, real: bool = False) -> Play:
    """A stored play as everyone sees it (its data masked), or with ``real`` as the engine
    runs it."""
    if "data" in doc or (real and "sealed" in doc):
        doc = _unsealed(doc, real)
    play: Play = _play_from_doc(doc, Play)
    return play


def layer_doc(layer: PlayLayer) -> dict[str, Any]:
    doc: dict[str, Any] = _layer_to_doc(layer)
    if doc.get("calls") is None:  # recorded only when the flow asks: no field otherwise
        doc.pop("calls", None)
    doc["_id"] = layer.key
    doc["layer_id"] = layer.key.split(":", 1)[1]
    return doc


def layer_from_doc(doc: dict[str, Any], *, real: bool = False) -> PlayLayer:
    """A stored layer as everyone sees it, or with ``real`` as the engine replays it (keys
    that are not fields, `_id`, `layer_id`, `data`, `sealed`, are not read)."""
    layer: PlayLayer = _layer_from_doc(_unsealed(doc, real), PlayLayer)
    return layer


MAX_ERROR_LENGTH = 2000


def error_text(text: str) -> str:
    """An error message as plays and layers store it: bounded, and always valid Unicode (a
    module's exception may quote data the store would refuse)."""
    return text[:MAX_ERROR_LENGTH].encode("utf-8", "replace").decode("utf-8")


_ELIDED = " [...] "


def elided(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, its middle cut out when it is longer. For an
    error that quotes another (a subflow step's quotes its child's, which may quote its own
    child's): the outer context and the root cause, which comes last, both survive, where
    cutting the tail (``error_text``) would drop the cause."""
    if len(text) <= limit:
        return text
    head = limit // 4
    tail = limit - head - len(_ELIDED)
    return text[:head] + _ELIDED + text[-tail:]


def request_fingerprint(flow_id: str, version: int | None, input: Any) -> str:
    """What an idempotency key is stored with: the sha256 of the start request's canonical
    JSON (keys sorted; the flow, the version asked for, None for the latest, and the input
    as prepared for the store). Two starts with the same key are the same request only if
    this matches. The version asked for, not the one resolved: a retry of the same request
    after the flow was edited is still the same request."""
    request = {"flowId": flow_id, "version": version, "input": input}
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()


def describe_crash(error: BaseException) -> str:
    """What a crashed play records of its cause: ``Type: message`` of the error (of the
    errors inside it, for an exception group), first line only."""
    lines = actors.describe(error).splitlines()
    return error_text(lines[0][:500] if lines else type(error).__name__)
