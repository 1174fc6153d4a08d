"""Every route in the OpenAPI document: the role x action matrix and tenant isolation."""

from __future__ import annotations

import re
from typing import Any

import attrs
import pytest
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ROLES, ApiEnv, example, operations

from flow8.services.identity import Action, Role, allowed

PASSWORD = "member-password-1"


@attrs.define
class World:
    env: ApiEnv
    spec: dict[str, Any]
    a: str  # company A
    b: str  # company B
    b_owner: str
    b_key_id: str
    b_member: str
    b_flow: str
    b_play: str
    b_credential: str
    b_invitation: str


async def _world(env: ApiEnv) -> World:
    async with env.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        a = (await owner.get("/api/auth/me")).json()["companyId"]
        for role in ROLES[1:]:
            await env.invite_and_accept(owner, a, f"{role}@a.example", role, PASSWORD)
        b_owner = await env.invite_and_accept(owner, a, "boss@b.example", "viewer", PASSWORD)
        assert (await owner.delete(f"/api/companies/{a}/members/{b_owner}")).status_code == 204
        spec = (await owner.get("/api/openapi.json")).json()
    async with env.session("boss@b.example", PASSWORD) as boss:
        b = (await boss.post("/api/companies", json={"name": "Beta"})).json()["id"]
        assert (await boss.post("/api/auth/company", json={"companyId": b})).status_code == 200
        key = await boss.post("/api/auth/api-keys", json={"name": "b-key", "scopes": ["api"]})
        b_member = await env.invite_and_accept(boss, b, "member@b.example", "editor", PASSWORD)
        r = await boss.post(
            f"/api/companies/{b}/members", json={"email": "pending@b.example", "role": "viewer"}
        )
        assert r.status_code == 201, r.text
        b_invitation = r.json()["id"]
        flow = {"name": "b-flow", "flowlets": [{"ref": "b1", "appId": "noop", "args": {}}]}
        b_flow = (await boss.post("/api/flows", json=flow)).json()["id"]
        play = await boss.post(f"/api/flows/{b_flow}/run?wait=5", json={"secret": "b-input"})
        assert play.json()["state"] == "DONE", play.text
        r = await boss.post("/api/kv", json={"key": "b-kv", "value": "b-value"})
        assert r.status_code == 200, r.text
        r = await boss.post(
            "/api/credentials",
            json={"name": "b-cred", "type": "bearer", "data": {"token": "b-token-value"}},
        )
        assert r.status_code == 201, r.text
        b_credential = r.json()["id"]
    return World(
        env,
        spec,
        a,
        b,
        b_owner,
        key.json()["id"],
        b_member,
        b_flow,
        play.json()["id"],
        b_credential,
        b_invitation,
    )


def _body(op: dict[str, Any], spec: dict[str, Any]) -> Any:
    body = op.get("requestBody")
    if body is None:
        return None
    return example(body["content"]["application/json"]["schema"], spec)


def _fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"{(\w+)}", lambda m: ids.get(m.group(1), "01UNKNOWNID"), path)


def _ordered(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    # Logging out ends the session used for the walk: do it last.
    return sorted(operations(spec), key=lambda o: o[1] == "/api/auth/logout")


async def test_every_route_is_in_the_permission_table_and_enforced(installed: ApiEnv) -> None:
    world = await _world(installed)
    ops = _ordered(world.spec)
    assert len(ops) >= 17
    for method, path, op in ops:
        assert "x-flow8-action" in op, f"{method} {path} has no action in the table"
        Action(op["x-flow8-action"])  # unknown actions fail here
    for role in ROLES:
        email = OWNER_EMAIL if role == "owner" else f"{role}@a.example"
        password = OWNER_PASSWORD if role == "owner" else PASSWORD
        async with installed.session(email, password) as client:
            for method, path, op in ops:
                action = Action(op["x-flow8-action"])
                url = _fill(path, {"companyId": world.a})
                r = await client.request(method, url, json=_body(op, world.spec))
                denied = r.status_code == 403 and r.json()["error"] == "PERMISSION_DENIED"
                expected = not allowed(Role(role), action)
                assert denied is expected, f"{role} {method} {path}: {r.status_code} {r.text}"
                assert r.status_code < 500, f"{role} {method} {path}: {r.text}"


async def test_company_a_cannot_reach_company_b(installed: ApiEnv) -> None:
    world = await _world(installed)
    b_ids = {
        "companyId": world.b,
        "keyId": world.b_key_id,
        "userId": world.b_member,
        "flowId": world.b_flow,
        "playId": world.b_play,
        "layerId": "b1",
        "version": "1",
        "key": "b-kv",
        "credentialId": world.b_credential,
        "invitationId": world.b_invitation,
    }
    store = installed.store.system
    tenant = installed.store.tenant(world.b)

    async def b_state() -> Any:
        company = await store.collection("companies").find_one({"_id": world.b})
        members = await store.collection("memberships").find({"company_id": world.b})
        keys = await store.collection("api_keys").find({"company_id": world.b})
        invitations = await store.collection("invitations").find({"company_id": world.b})
        data = [
            await tenant.collection(name).find({}, sort=[("_id", 1)])
            for name in ("flows", "flow_versions", "plays", "play_layers", "kv", "links")
        ]
        members_roles = sorted((m["user_id"], m["role"]) for m in members)
        return company, members_roles, keys, invitations, data

    before = await b_state()
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as a_owner:
        for method, path, op in _ordered(world.spec):
            if "{" not in path or "{appId}" in path:
                continue  # the module catalog is the same for every company
            r = await a_owner.request(method, _fill(path, b_ids), json=_body(op, world.spec))
            assert r.status_code == 404, f"{method} {path}: {r.status_code} {r.text}"
            if "{credentialId}" in path:  # answered by the service, not a missing route
                assert r.json()["error"] == "CREDENTIAL_NOT_FOUND", r.text
        r = await a_owner.post("/api/auth/company", json={"companyId": world.b})
        assert r.status_code == 404
        lists = [
            "/api/companies",
            "/api/auth/api-keys",
            f"/api/companies/{world.a}/members",
            f"/api/companies/{world.a}/invitations",
            "/api/flows",
            "/api/plays",
            "/api/kv",
            f"/api/plays?flowId={world.b_flow}",
            "/api/credentials",
            "/api/credentials?type=bearer",
        ]
        for url in lists:
            r = await a_owner.get(url)
            assert r.status_code == 200, url
            text = r.text
            assert "b-value" not in text
            assert "b-input" not in text
            assert "b-cred" not in text
            assert "b-token-value" not in text
            assert "pending@b.example" not in text
            foreign_ids = (world.b, world.b_key_id, world.b_member, world.b_owner, world.b_flow)
            for foreign in (*foreign_ids, world.b_credential, world.b_invitation):
                assert foreign not in text, f"{url} leaks {foreign}"
        await installed.audit.wait_idle()
        audit = await a_owner.get("/api/audit", params={"size": 100})
        assert audit.status_code == 200
        # A's trail holds A's own probes (with B's ids in their paths) but none of B's events.
        assert "b-key" not in audit.text
        assert "member@b.example" not in audit.text
        assert "pending@b.example" not in audit.text
        assert "Beta" not in audit.text
        assert "b-token-value" not in audit.text
    assert await b_state() == before


async def test_api_key_is_bound_to_its_company(installed: ApiEnv) -> None:
    world = await _world(installed)
    async with installed.session("boss@b.example", PASSWORD) as boss:
        key = (await boss.post("/api/auth/api-keys", json={"name": "k", "scopes": ["api"]})).json()[
            "key"
        ]
    async with installed.client(headers={"Authorization": f"Bearer {key}"}) as bot:
        assert (await bot.get(f"/api/companies/{world.a}")).status_code == 404
        assert (await bot.get(f"/api/companies/{world.b}")).status_code == 200
        r = await bot.post("/api/auth/company", json={"companyId": world.a})
        assert r.status_code in (403, 404)
        r = await bot.post("/api/companies", json={"name": "Gamma"})
        assert r.status_code == 403


@pytest.mark.parametrize("role", ["viewer", "operator", "editor"])
async def test_lower_roles_cannot_read_audit(installed: ApiEnv, role: str) -> None:
    await _world(installed)
    async with installed.session(f"{role}@a.example", PASSWORD) as client:
        assert (await client.get("/api/audit")).status_code == 403


async def test_every_http_route_the_app_serves_is_in_the_openapi_document(
    installed: ApiEnv,
) -> None:
    async with installed.client() as client:
        spec = (await client.get("/api/openapi.json")).json()
    documented = {
        (method.upper(), re.sub(r"{(\w+)}", r"<\1>", path))
        for path, ops in spec["paths"].items()
        for method in ops
    }
    rules = [r for r in installed.app.url_map.iter_rules() if not r.websocket]
    # The browser UI's pages and static files (endpoints "ui.*") are not API routes; none of
    # them may sit under /api/.
    assert [
        r.rule for r in rules if r.endpoint.startswith("ui.") and r.rule.startswith("/api/")
    ] == []
    served = {
        (method, rule.rule)
        for rule in rules
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS") and not rule.endpoint.startswith("ui.")
    }
    # /admin/* and /metrics answer to their own token, not the API's credentials (see
    # docs/api.md)
    undocumented = {
        (m, r) for m, r in served - documented if not r.startswith("/admin/") and r != "/metrics"
    }
    assert undocumented == set()
