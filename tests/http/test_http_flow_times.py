"""A flow's createdAt over the REST API: the first version's time, through updates and a
restore; updatedAt is the time of each new version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import trio
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv

STEP = {"ref": "a", "appId": "set", "args": {"value": 1}}


def _times(flow: dict[str, Any]) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(flow["createdAt"]), datetime.fromisoformat(flow["updatedAt"])


async def _put(c: httpx.AsyncClient, fid: str, name: str) -> dict[str, Any]:
    await trio.sleep(0.01)  # (virtual time) each version's time distinct at millisecond grain
    r = await c.put(f"/api/flows/{fid}", json={"name": name, "flowlets": [STEP]})
    assert r.status_code == 200, r.text
    flow: dict[str, Any] = r.json()
    return flow


async def test_created_at_survives_updates_and_a_restore(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as c:
        r = await c.post("/api/flows", json={"name": "v1", "flowlets": [STEP]})
        assert r.status_code == 201, r.text
        fid = r.json()["id"]
        created, first = _times(r.json())
        assert first == created
        v2, v3 = await _put(c, fid, "v2"), await _put(c, fid, "v3")
        assert [f["version"] for f in (v2, v3)] == [2, 3]
        assert [_times(f)[0] for f in (v2, v3)] == [created, created]
        assert first < _times(v2)[1] < _times(v3)[1]

        got = (await c.get(f"/api/flows/{fid}")).json()
        assert (got["version"], *_times(got)) == (3, created, _times(v3)[1])
        versions = (await c.get(f"/api/flows/{fid}/versions")).json()["data"]
        assert [(f["version"], _times(f)[0]) for f in versions] == [
            (3, created),
            (2, created),
            (1, created),
        ]
        assert [_times(f)[1] for f in versions] == [_times(v3)[1], _times(v2)[1], first]
        listed = (await c.get("/api/flows")).json()["data"]
        assert [_times(f) for f in listed] == [(created, _times(v3)[1])]

        await trio.sleep(0.01)  # (virtual time)
        r = await c.post(f"/api/flows/{fid}/versions/1/restore")
        assert r.status_code == 200, r.text
        restored = r.json()
        assert (restored["version"], restored["name"]) == (4, "v1")
        assert _times(restored)[0] == created
        assert _times(restored)[1] > _times(v3)[1]
        got = (await c.get(f"/api/flows/{fid}")).json()
        assert _times(got) == _times(restored)
