"""One fault, one wording: a value of the wrong type gets the same message naming its field
whether it is in a flow definition, a request body or a query parameter, because all three
are read by the one API converter (`flow8.domain.api`)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv

from flow8.domain import MESSAGES, FlowValidationError, parse_flow_definition
from flow8.http._api import parse_query
from flow8.http.exceptions import ValidationFailed

STEP = {"ref": "a", "appId": "noop"}


@attrs.frozen
class FlagQuery:
    verbose: bool = False
    limit: float | None = None


def _query_fields(args: dict[str, str]) -> list[dict[str, str]]:
    with pytest.raises(ValidationFailed) as refused:
        parse_query(FlagQuery, args)
    return refused.value.fields


def _flow_problems(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(FlowValidationError) as refused:
        parse_flow_definition(data)
    return {p.path: p.message for p in refused.value.problems}


async def test_a_string_for_a_boolean_is_worded_alike_everywhere(installed: ApiEnv) -> None:
    said = "must be a boolean"
    assert MESSAGES["not a boolean"] == said
    # A flow definition, read on its own (flow files, the CLI) ...
    flow = {"name": "f", "kvInherit": "yes", "flowlets": [{**STEP, "needsApproval": "no"}]}
    assert _flow_problems(flow) == {"kvInherit": said, "flowlets[0].needsApproval": said}
    # ... a query parameter ...
    assert _query_fields({"verbose": "yes"}) == [{"field": "verbose", "message": said}]
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as c:
        # ... the same flow sent to the API ...
        r = await c.post("/api/flows", json=flow)
        assert r.status_code == 422, r.text
        assert r.json()["fields"] == [
            {"field": "flowlets[0].needsApproval", "message": said},
            {"field": "kvInherit", "message": said},
        ]
        # ... and a request body.
        r = await c.post("/api/kv", json={"key": "k", "value": 1, "secret": "yes"})
        assert r.status_code == 422, r.text
        assert r.json()["fields"] == [{"field": "secret", "message": said}]


async def test_a_word_for_a_number_is_worded_alike_everywhere(installed: ApiEnv) -> None:
    said = "must be a number"
    assert _flow_problems({"name": "f", "flowlets": [{**STEP, "timeout": "soon"}]}) == {
        "flowlets[0].timeout": said
    }
    assert _query_fields({"limit": "soon"}) == [{"field": "limit", "message": said}]
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as c:
        r = await c.post("/api/flows", json={"name": "f", "flowlets": [STEP]})
        assert r.status_code == 201, r.text
        fid = r.json()["id"]
        r = await c.post(f"/api/flows/{fid}/run", params={"wait": "soon"}, json={})
        assert r.json()["fields"] == [{"field": "wait", "message": said}]
        r = await c.post("/api/kv", json={"key": "k", "value": 1, "ttlSeconds": "soon"})
        assert r.json()["fields"] == [{"field": "ttlSeconds", "message": said}]


async def test_missing_and_unknown_fields_are_worded_alike(installed: ApiEnv) -> None:
    assert _flow_problems({"name": "f", "flowlets": [{"ref": "a"}], "colour": "red"}) == {
        "flowlets[0].appId": "is required",
        "colour": "is not allowed (unknown field)",
    }
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as c:
        r = await c.post("/api/kv", json={"value": 1, "colour": "red"})
        assert r.status_code == 422, r.text
        assert r.json()["fields"] == [
            {"field": "key", "message": "is required"},
            {"field": "colour", "message": "is not allowed (unknown field)"},
        ]
        # A body that is not an object at all is named as the body.
        r = await c.post("/api/kv", json=[1])
        assert r.json()["fields"] == [{"field": "(body)", "message": "must be an object"}]


async def test_blank_text_is_worded_alike_and_means_the_same_as_in_the_schema(
    installed: ApiEnv,
) -> None:
    blank = " \u3000\ufeff"  # whitespace to Python or to ECMAScript (the schema's pattern)
    said = "must not be blank"
    assert _flow_problems({"name": blank, "flowlets": [STEP]}) == {"name": said}
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as c:
        r = await c.post("/api/companies", json={"name": blank})
        assert r.status_code == 422, r.text
        assert r.json()["fields"] == [{"field": "name", "message": said}]
        r = await c.post("/api/flows", json={"name": "f", "flowlets": [STEP], "group": ""})
        assert r.status_code == 201, r.text
        assert r.json()["group"] is None  # an empty group is no group
