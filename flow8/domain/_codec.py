"""Domain models at their two boundaries (the converters are in ``_boundary``).

* API / flow files: camelCase, :func:`parse_flow_definition` for input (every structural
  problem at once, with its path), :func:`flow_definition_to_api` for output;
* storage: the documents plays and layers have always been stored as (see
  :meth:`StorageConverter.store_as`); every other model is stored by attribute name.

The rules of a flow definition (lengths, bounds, refs, component kinds) are declared on its
fields in ``_flow``; the converter applies them and the OpenAPI document publishes them.
"""

from __future__ import annotations

from typing import Any

from ._boundary import api, storage
from ._flow import FlowDefinition
from ._play import Play, PlayLayer
from ._trace import PlayTrace
from .exceptions import FlowValidationError, InvalidData

# A stored play names its id `_id` and its state `status`; every other field is the attribute.
# The runtime fields the engine keeps beside them (lease, approvals, cancel request) are not
# part of `Play` and are simply not read. A play's input and output, and a layer's arguments
# and output, are JSON already (the runner made them so): stored as they are, not walked.
# Usage is kept only by plays and layers that made metered calls, a trace only by plays
# started by a request (or the child of one), and of a trace only what it has.
# (The trace's hook first: the play's is generated with the hooks of its fields.)
storage.store_as(PlayTrace, {}, omit_default=("correlation_id", "trace_id", "trace_flags"))
storage.store_as(
    Play,
    {"id": "_id", "state": "status"},
    as_is=("input", "output"),
    omit_default=("usage", "trace"),
)
storage.store_as(PlayLayer, {}, as_is=("args", "output"), omit_default=("usage",))


def flow_definition_to_api(definition: FlowDefinition) -> dict[str, Any]:
    """The camelCase form of a flow definition (what a flow file contains)."""
    out: dict[str, Any] = api.unstructure(definition)
    return out


def parse_flow_definition(data: Any) -> FlowDefinition:
    """Build a :class:`FlowDefinition` from its camelCase JSON form.

    Raises :class:`FlowValidationError` listing every structural problem. Semantic checks
    (known modules, argument schemas, expressions, reference order) are the engine's
    ``validate_flow``.
    """
    try:
        return api.parse(data, FlowDefinition)
    except InvalidData as e:
        raise FlowValidationError(e.problems) from None
