"""Idempotency-Key on the run route, as Stripe does it: the same request again answers the
same play; the same key with a different body answers 422 IDEMPOTENCY_KEY_REUSED."""

from __future__ import annotations

from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv

FLOW = {"name": "echo", "flowlets": [{"ref": "a", "appId": "set", "args": {"value": 1}}]}


async def test_the_same_key_and_body_answer_the_same_play(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as c:
        flow_id = (await c.post("/api/flows", json=FLOW)).json()["id"]
        run = f"/api/flows/{flow_id}/run"
        key = {"Idempotency-Key": "order-1"}
        first = await c.post(run, json={"n": 1, "tags": ["x"]}, headers=key)
        assert first.status_code in (200, 202), first.text
        # The same JSON with its keys in another order is the same request.
        again = await c.post(
            run,
            content=b'{"tags": ["x"], "n": 1}',
            headers={**key, "Content-Type": "application/json"},
        )
        assert again.status_code in (200, 202), again.text
        assert again.json()["id"] == first.json()["id"]
        listing = (await c.get("/api/plays", params={"flowId": flow_id})).json()
        assert listing["total"] == 1


async def test_the_same_key_with_another_body_is_refused(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as c:
        flow_id = (await c.post("/api/flows", json=FLOW)).json()["id"]
        run = f"/api/flows/{flow_id}/run"
        key = {"Idempotency-Key": "order-2"}
        first = await c.post(run, json={"n": 1}, headers=key)
        assert first.status_code in (200, 202), first.text
        for other in ({"n": 2}, {"n": 1, "extra": True}):
            r = await c.post(run, json=other, headers=key)
            assert r.status_code == 422, r.text
            body = r.json()
            assert body["error"] == "IDEMPOTENCY_KEY_REUSED"
            assert body["statusCode"] == 422
            assert "already used with a different request" in body["message"]
            assert first.json()["id"] in body["message"]  # the play the key stands for
        r = await c.post(run, headers=key)  # no body (input null) is another request too
        assert r.status_code == 422, r.text
        listing = (await c.get("/api/plays", params={"flowId": flow_id})).json()
        assert listing["total"] == 1  # nothing else was started
        # The original request still answers its play; a new key starts a new one.
        again = await c.post(run, json={"n": 1}, headers=key)
        assert again.json()["id"] == first.json()["id"]
        fresh = await c.post(run, json={"n": 2}, headers={"Idempotency-Key": "order-3"})
        assert fresh.status_code in (200, 202), fresh.text
        assert fresh.json()["id"] != first.json()["id"]
