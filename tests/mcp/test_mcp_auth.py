"""Who may reach the MCP server: refusals of bad tokens, keys and origins, as an agent (or a
browser page) sees them on the wire, and the SDK client failing to connect with them."""

from __future__ import annotations

import base64
import json
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from mcp_fixtures import ORIGIN_OK, McpEnv, mcp_env

pytestmark = pytest.mark.wall_clock

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "probe", "version": "1"},
    },
}
MCP_HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
}


async def _initialize(env: McpEnv, token: str | None, **headers: str) -> Any:
    async with env.http(token) as client:
        return await client.post(env.url, headers={**MCP_HEADERS, **headers}, json=INITIALIZE)


def _unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        raw = json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _hs512(env: McpEnv) -> str:
    # The right secret, another algorithm than the allow-list's (PyJWT warns: a short key).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return env.token(algorithm="HS512")


def _assert_401(response: Any) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'realm="flow8-mcp"' in challenge
    assert "resource_metadata=" in challenge


async def test_valid_key_and_jwt_open_a_session(env: McpEnv) -> None:
    for token in (env.owner_key, env.token()):
        r = await _initialize(env, token)
        assert r.status_code == 200, r.text
        assert r.headers["mcp-session-id"]


async def test_no_token_is_401_with_a_challenge(env: McpEnv) -> None:
    _assert_401(await _initialize(env, None))
    _assert_401(await _initialize(env, None, authorization="Basic b3duZXI6cHc="))


@pytest.mark.parametrize(
    "case",
    [
        "wrong_audience",
        "expired",
        "alg_none",
        "other_secret",
        "wrong_issuer",
        "no_exp",
        "no_company",
        "not_a_member",
        "hs512",
        "garbage",
    ],
)
async def test_bad_jwts_are_refused(env: McpEnv, case: str) -> None:
    tokens = {
        "wrong_audience": lambda: env.token(aud="https://api.flow8.example/other"),
        "expired": lambda: env.token(exp=int(time.time()) - 120),
        "alg_none": lambda: _unsigned(
            {
                "sub": env.owner_id,
                "company_id": env.acme,
                "iss": "flow8",
                "aud": env.url,
                "exp": int(time.time()) + 300,
            }
        ),
        "other_secret": lambda: env.token(secret="another-secret-of-32-bytes-or-more!!"),
        "wrong_issuer": lambda: env.token(iss="someone-else"),
        "no_exp": lambda: env.token(exp=None),
        "no_company": lambda: env.token(company_id=None),
        "not_a_member": lambda: env.token(sub=env.viewer_id, company_id=env.globex),
        "hs512": lambda: _hs512(env),
        "garbage": lambda: "not.a.jwt",
    }
    _assert_401(await _initialize(env, tokens[case]()))


async def test_a_removed_member_jwt_is_refused(env: McpEnv) -> None:
    token = env.token(sub=env.viewer_id)
    assert (await _initialize(env, token)).status_code == 200
    owner = await env.identity.get_user(env.owner_id)
    from flow8.services.identity import Principal, Role

    await env.identity.remove_member(
        Principal(owner, env.acme, Role.OWNER, "session"), env.viewer_id
    )
    _assert_401(await _initialize(env, token))


async def test_a_key_without_the_mcp_scope_is_403(env: McpEnv) -> None:
    r = await _initialize(env, env.api_only_key)
    assert r.status_code == 403
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert env.api_only_key not in r.text


async def test_an_unknown_key_is_401(env: McpEnv) -> None:
    forged = env.owner_key[:-4] + ("AAAA" if not env.owner_key.endswith("AAAA") else "BBBB")
    _assert_401(await _initialize(env, forged))


async def test_a_bad_origin_is_403_before_anything_else(env: McpEnv) -> None:
    r = await _initialize(env, env.owner_key, origin="https://evil.example")
    assert r.status_code == 403
    assert "www-authenticate" not in r.headers
    # Without a credential too: the origin is judged first.
    assert (await _initialize(env, None, origin="http://localhost.evil.example")).status_code == 403


async def test_allowed_origins_and_the_endpoint_own_origin_pass(env: McpEnv) -> None:
    own = env.url.removesuffix("/mcp")
    for origin in (ORIGIN_OK, own):
        r = await _initialize(env, env.owner_key, origin=origin)
        assert r.status_code == 200, (origin, r.text)


async def test_a_foreign_host_header_is_refused_on_loopback(env: McpEnv) -> None:
    r = await _initialize(env, env.owner_key, host="rebound.example.com:4445")
    assert r.status_code == 421


async def test_other_paths_are_404(env: McpEnv) -> None:
    async with env.http(env.owner_key) as client:
        r = await client.post(
            env.url.removesuffix("/mcp") + "/api/flows", headers=MCP_HEADERS, json=INITIALIZE
        )
    assert r.status_code == 404


async def test_the_sdk_client_cannot_connect_with_a_refused_token(env: McpEnv) -> None:
    with pytest.raises(ExceptionGroup) as caught:
        async with env.session(env.token(aud="http://elsewhere.example/mcp")):
            pass
    # The transport's failed POST surfaces as an MCP error of the initialize request.
    assert "MCPError" in repr(caught.value)


async def test_without_a_jwt_secret_only_api_keys_are_accepted(tmp_path: Path) -> None:
    async with mcp_env(tmp_path, jwt_secret=None) as env:
        _assert_401(await _initialize(env, env.token()))
        assert (await _initialize(env, env.owner_key)).status_code == 200
