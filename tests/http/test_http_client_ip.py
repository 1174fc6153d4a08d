"""The client's address behind trusted reverse proxies: the function, then the real app.

Over the real server the test client's socket address is 127.0.0.1; configuring it as a
trusted proxy makes the test client play the proxy.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx
import pytest
import trio
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv, start_app
from hypothesis import given, settings
from hypothesis import strategies as st
from trio_websocket import open_websocket_url
from werkzeug.datastructures import Headers

from flow8.http import HttpSettings, serve_http
from flow8.http._client_ip import client_address, trusted_networks
from flow8.services.identity import RateLimiter
from flow8.store import Store

# Socket peers and forwarded addresses: the app as deployed (a real socket, sqlite), on the
# real clock (see conftest).
pytestmark = pytest.mark.wall_clock

XFF = "X-Forwarded-For"
PROXIES = trusted_networks("10.0.0.0/8, fd00::/8, 192.0.2.1")


def _xff(*values: str) -> Headers:
    return Headers([(XFF, value) for value in values])


# -- the function --------------------------------------------------------------------------


def test_without_trusted_proxies_the_header_is_never_read() -> None:
    assert client_address("198.51.100.9", _xff("203.0.113.7"), ()) == "198.51.100.9"
    assert client_address(None, _xff("203.0.113.7"), ()) is None


def test_a_peer_that_is_not_a_trusted_proxy_is_the_client() -> None:
    assert client_address("198.51.100.9", _xff("203.0.113.7"), PROXIES) == "198.51.100.9"
    assert client_address("unix-socket", _xff("203.0.113.7"), PROXIES) == "unix-socket"
    assert client_address(None, _xff("203.0.113.7"), PROXIES) is None


def test_a_trusted_peer_without_the_header_is_the_client() -> None:
    assert client_address("10.0.0.2", Headers(), PROXIES) == "10.0.0.2"
    assert client_address("10.0.0.2", _xff(""), PROXIES) == "10.0.0.2"


def test_a_chain_of_trusted_proxies_is_walked_to_the_client() -> None:
    # client -> proxy 10.0.0.1 -> proxy 192.0.2.1 -> flow8 (peer 10.0.0.3)
    headers = _xff("203.0.113.7, 10.0.0.1, 192.0.2.1")
    assert client_address("10.0.0.3", headers, PROXIES) == "203.0.113.7"


def test_what_a_client_wrote_left_of_its_own_address_is_ignored() -> None:
    headers = _xff("1.1.1.1, 10.0.0.9, 203.0.113.7")  # the client sent "1.1.1.1, 10.0.0.9"
    assert client_address("10.0.0.3", headers, PROXIES) == "203.0.113.7"


def test_an_untrusted_middle_hop_is_the_client() -> None:
    headers = _xff("203.0.113.7, 198.51.100.66, 10.0.0.1")
    assert client_address("10.0.0.3", headers, PROXIES) == "198.51.100.66"


def test_when_every_hop_is_trusted_the_left_most_is_the_client() -> None:
    assert client_address("10.0.0.3", _xff("10.0.0.1, 10.0.0.2"), PROXIES) == "10.0.0.1"


def test_several_headers_are_joined_in_order() -> None:
    headers = _xff("203.0.113.7", "198.51.100.5, 10.0.0.1", "10.0.0.2")
    assert client_address("10.0.0.3", headers, PROXIES) == "198.51.100.5"
    headers = _xff("203.0.113.7", "10.0.0.1", "10.0.0.2")
    assert client_address("10.0.0.3", headers, PROXIES) == "203.0.113.7"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("203.0.113.7, not-an-ip, 10.0.0.1", "10.0.0.1"),  # the last good hop
        ("203.0.113.7, 10.0.0.1, garbage", "10.0.0.3"),  # no good hop: the peer
        ("203.0.113.7,, 10.0.0.1", "10.0.0.1"),
        ("203.0.113.7, 10.0.0.1, ", "10.0.0.3"),
        ("<script>alert(1)</script>", "10.0.0.3"),
        ("unknown", "10.0.0.3"),
        ("fe80::1%eth0, 10.0.0.1", "10.0.0.1"),  # a zone id is free text
        ("fe80::1%<b>, 10.0.0.1", "10.0.0.1"),
        ("999.1.1.1", "10.0.0.3"),
        ("01.2.3.4", "10.0.0.3"),
        ("1.2.3.4:abc", "10.0.0.3"),
        ("1.2.3.4:", "10.0.0.3"),
        ("[2001:db8::1", "10.0.0.3"),
        ("[2001:db8::1]x", "10.0.0.3"),
        ("[2001:db8::1]:99999999", "10.0.0.3"),
        ("[not-an-ip]:80", "10.0.0.3"),
    ],
)
def test_garbage_ends_the_walk_at_the_last_good_hop(header: str, expected: str) -> None:
    assert client_address("10.0.0.3", _xff(header), PROXIES) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("203.0.113.7:51234, 10.0.0.1:443", "203.0.113.7"),
        ("[2001:db8::7]:51234", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
    ],
)
def test_ports_some_proxies_add_are_dropped(header: str, expected: str) -> None:
    assert client_address("10.0.0.3", _xff(header), PROXIES) == expected


def test_ipv6_peers_hops_and_networks() -> None:
    # written with capitals and zeros by a proxy: recorded in canonical form, so one client
    # is one rate-limit key however its address is spelled
    headers = _xff("2001:DB8:0:0::7, fd00::1")
    assert client_address("fd00::2", headers, PROXIES) == "2001:db8::7"
    assert client_address("fd00::2", _xff("203.0.113.7"), PROXIES) == "203.0.113.7"
    assert client_address("2001:db8::9", _xff("203.0.113.7"), PROXIES) == "2001:db8::9"
    assert client_address("10.0.0.3", _xff("2001:db8::7, fd00::1"), PROXIES) == "2001:db8::7"


def test_ipv4_mapped_addresses_match_ipv4_networks() -> None:
    # a dual-stack listener sees an IPv4 proxy as ::ffff:10.0.0.3
    headers = _xff("::ffff:203.0.113.7, ::ffff:10.0.0.1")
    assert client_address("::ffff:10.0.0.3", headers, PROXIES) == "203.0.113.7"


def test_trusted_networks_parse_once_and_refuse_bad_entries() -> None:
    assert trusted_networks(["10.0.0.1", " fd00::/8 ", ""]) == (
        ipaddress.ip_network("10.0.0.1/32"),
        ipaddress.ip_network("fd00::/8"),
    )
    net = ipaddress.ip_network("10.0.0.0/8")
    assert trusted_networks((net,)) == (net,)
    assert HttpSettings(trusted_proxies="10.0.0.1,::1").trusted_proxies == (
        ipaddress.ip_network("10.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    with pytest.raises(ValueError, match=r"10\.0\.0\.0/33"):
        trusted_networks("10.0.0.0/33")
    with pytest.raises(ValueError, match="host bits"):
        HttpSettings(trusted_proxies=("10.0.0.1/8",))


# header values as a server decodes them: latin-1, no line breaks
_hop_text = st.text(alphabet=st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=30)
_addresses = st.ip_addresses().map(str)


@settings(max_examples=200, deadline=None)
@given(sent=st.lists(_hop_text | _addresses, max_size=5), client=_addresses)
def test_a_client_cannot_choose_the_address_a_trusted_proxy_vouches_for(
    sent: list[str], client: str
) -> None:
    """Whatever a client puts in the header, the proxy's appended address wins (unless the
    client's real address is itself a trusted proxy)."""
    real = ipaddress.ip_address(client)
    if isinstance(real, ipaddress.IPv6Address) and real.ipv4_mapped is not None:
        real = real.ipv4_mapped
    if any(real in network for network in PROXIES):
        return
    # the client sends `sent` (as one header or several); its proxy appends its address,
    # and the next proxy appends the first proxy's
    headers = _xff(*sent, client) if len(sent) % 2 else _xff(", ".join([*sent, client]))
    headers.add(XFF, "10.0.0.1")
    assert client_address("10.0.0.3", headers, PROXIES) == str(real)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(_hop_text | _addresses, min_size=1, max_size=6))
def test_the_answer_is_always_the_peer_or_a_plain_address(values: list[str]) -> None:
    found = client_address("10.0.0.3", _xff(*values), PROXIES)
    assert found is not None
    assert str(ipaddress.ip_address(found)) == found  # canonical, no zone id, no port


# -- the real app ----------------------------------------------------------------------------


async def _proxied_app(
    nursery: trio.Nursery, store: Store, trusted: tuple[str, ...], host: str = "127.0.0.1"
) -> ApiEnv:
    settings = HttpSettings(admin_token="admin-token-for-tests", trusted_proxies=trusted)
    app, identity, audit = await start_app(nursery, store, settings)
    binds: list[str] = await nursery.start(
        lambda task_status: serve_http(app, host, 0, graceful_timeout=1.0, task_status=task_status)
    )
    env = ApiEnv(binds[0], store, identity, audit, app)
    async with env.client() as client:
        r = await client.post(
            "/api/install",
            json={"company": "Acme", "email": OWNER_EMAIL, "password": OWNER_PASSWORD},
        )
        assert r.status_code == 201, r.text
    return env


@pytest.fixture
async def behind_proxy(nursery: trio.Nursery, store: Store) -> ApiEnv:
    """The test client (127.0.0.1) is a trusted proxy, and so is the 10.0.0.0/8 pool."""
    return await _proxied_app(nursery, store, ("127.0.0.1", "10.0.0.0/8", "fd00::/8"))


async def _audited_ip(env: ApiEnv, correlation_id: str) -> Any:
    await env.audit.wait_idle()
    entry = await env.store.system.collection("system_audit_logs").find_one(
        {"correlation_id": correlation_id}
    )
    assert entry is not None, correlation_id
    return entry["ip"]


async def _failed_login(client: httpx.AsyncClient, n: int, forwarded: str) -> int:
    r = await client.post(
        "/api/auth/login",
        json={"email": f"nobody-{n}@example.com", "password": "wrong-password"},
        headers={XFF: forwarded},
    )
    return r.status_code


def _small_ip_limit(env: ApiEnv) -> None:
    # The service's per-IP limiter with a smaller limit, so a test needs few slow hashes.
    env.identity.ip_limiter = RateLimiter(3, 900, env.identity.clock)


async def test_a_direct_client_is_audited_by_its_socket_address(installed: ApiEnv) -> None:
    async with installed.client() as client:
        headers = {XFF: "203.0.113.7", "X-Request-Id": "direct-1"}
        assert (await client.get("/api/install", headers=headers)).status_code == 200
    assert await _audited_ip(installed, "direct-1") == "127.0.0.1"


async def test_a_direct_client_cannot_dodge_the_login_limit_by_rotating_the_header(
    installed: ApiEnv,
) -> None:
    _small_ip_limit(installed)
    async with installed.client() as client:
        for n in range(3):
            assert await _failed_login(client, n, f"203.0.113.{n}") == 401
        assert await _failed_login(client, 3, "198.51.100.200") == 429
        r = await client.post(
            "/api/auth/login",
            json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD},
            headers={XFF: "198.51.100.201"},
        )
        assert r.status_code == 429
    await installed.audit.wait_idle()
    failures = await installed.store.system.collection("system_audit_logs").find(
        {"action": "auth_login_failure"}
    )
    assert [entry["ip"] for entry in failures] == ["127.0.0.1"] * 3


async def test_with_proxies_configured_a_client_not_among_them_is_still_its_socket_address(
    nursery: trio.Nursery, store: Store
) -> None:
    env = await _proxied_app(nursery, store, ("10.0.0.0/8", "::1"))
    _small_ip_limit(env)
    async with env.client() as client:
        headers = {XFF: "203.0.113.7, 10.0.0.1", "X-Request-Id": "not-a-proxy"}
        assert (await client.get("/api/install", headers=headers)).status_code == 200
        for n in range(3):
            assert await _failed_login(client, n, f"203.0.113.{n}, 10.0.0.1") == 401
        assert await _failed_login(client, 3, "198.51.100.9, 10.0.0.1") == 429
    assert await _audited_ip(env, "not-a-proxy") == "127.0.0.1"


async def test_behind_a_trusted_proxy_the_forwarded_client_is_audited(
    behind_proxy: ApiEnv,
) -> None:
    async with behind_proxy.client() as client:
        for correlation_id, header in [
            ("one-proxy", "203.0.113.7"),
            ("chain", "198.51.100.1, 203.0.113.8, 10.0.0.1, 10.0.0.2"),
            ("untrusted-middle", "203.0.113.9, 198.51.100.66, 10.0.0.1"),
            ("garbage", "203.0.113.10, garbage, 10.0.0.1"),
            ("ipv6", "2001:db8::7, fd00::1"),
            ("no-header", ""),
        ]:
            headers = {"X-Request-Id": correlation_id}
            if header:
                headers[XFF] = header
            assert (await client.get("/api/install", headers=headers)).status_code == 200
    assert await _audited_ip(behind_proxy, "one-proxy") == "203.0.113.7"
    assert await _audited_ip(behind_proxy, "chain") == "203.0.113.8"
    assert await _audited_ip(behind_proxy, "untrusted-middle") == "198.51.100.66"
    assert await _audited_ip(behind_proxy, "garbage") == "10.0.0.1"
    assert await _audited_ip(behind_proxy, "ipv6") == "2001:db8::7"
    assert await _audited_ip(behind_proxy, "no-header") == "127.0.0.1"


async def test_behind_a_trusted_proxy_the_login_limit_applies_per_forwarded_client(
    behind_proxy: ApiEnv,
) -> None:
    _small_ip_limit(behind_proxy)
    a, b = "203.0.113.7", "198.51.100.2"
    async with behind_proxy.client() as client:
        for n in range(3):
            assert await _failed_login(client, n, a) == 401
        assert await _failed_login(client, 3, a) == 429
        # A claiming to be B: the proxy appends A's real address, which is what counts.
        assert await _failed_login(client, 4, f"{b}, {a}") == 429
        assert await _failed_login(client, 5, b) == 401
        r = await client.post(
            "/api/auth/login",
            json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD},
            headers={XFF: b},
        )
        assert r.status_code == 200, r.text
        company = r.json()["companyId"]
    await behind_proxy.audit.wait_idle()
    success = (
        await behind_proxy.store.tenant(company)
        .collection("audit_logs")
        .find_one({"action": "auth_login_success"})
    )
    assert success is not None
    assert success["ip"] == b
    failures = await behind_proxy.store.system.collection("system_audit_logs").find(
        {"action": "auth_login_failure"}
    )
    assert sorted(entry["ip"] for entry in failures) == sorted([a, a, a, b])


async def test_ipv6_clients_are_limited_per_64_network(behind_proxy: ApiEnv) -> None:
    # One subscriber usually holds a whole /64: rotating through it must not reset the count.
    _small_ip_limit(behind_proxy)
    async with behind_proxy.client() as client:
        for n in range(3):
            assert await _failed_login(client, n, f"2001:db8:1:2::{n + 1:x}") == 401
        assert await _failed_login(client, 3, "2001:db8:1:2:ffff::9") == 429
        assert await _failed_login(client, 4, "2001:db8:1:3::1") == 401  # the next /64
    await behind_proxy.audit.wait_idle()
    failures = await behind_proxy.store.system.collection("system_audit_logs").find(
        {"action": "auth_login_failure"}
    )
    # the audit trail keeps each full address
    assert sorted(e["ip"] for e in failures) == [
        "2001:db8:1:2::1",
        "2001:db8:1:2::2",
        "2001:db8:1:2::3",
        "2001:db8:1:3::1",
    ]


async def test_the_websocket_audit_records_the_forwarded_client(behind_proxy: ApiEnv) -> None:
    async with behind_proxy.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        r = await owner.post("/api/auth/api-keys", json={"name": "ws", "scopes": ["api"]})
        key = r.json()["key"]
        company = (await owner.get("/api/auth/me")).json()["companyId"]
    url = behind_proxy.url.replace("http://", "ws://") + "/ws"
    headers = [
        (b"authorization", f"Bearer {key}".encode()),
        (b"x-forwarded-for", b"203.0.113.77, 10.0.0.1"),
    ]
    async with open_websocket_url(url, extra_headers=headers) as ws:
        await ws.send_message('{"action": "subscribe", "company": true}')
        with trio.fail_after(5):
            assert '"subscribed"' in str(await ws.get_message())
    await behind_proxy.audit.wait_idle()
    logs = behind_proxy.store.tenant(company).collection("audit_logs")
    connected = await logs.find_one({"action": "ws_connected"})
    assert connected is not None
    assert connected["ip"] == "203.0.113.77"


async def test_admin_sign_in_limit_is_per_socket_address_without_trusted_proxies(
    installed: ApiEnv,
) -> None:
    gate = installed.app.admin_gate
    gate.failures = RateLimiter(2, 900, gate.clock)
    async with installed.client() as client:
        for n in range(2):
            r = await client.post(
                "/admin/login", data={"token": "guess"}, headers={XFF: f"203.0.113.{n}"}
            )
            assert r.status_code == 403
        r = await client.get(
            "/admin/actors",
            headers={"Authorization": "Bearer guess", XFF: "198.51.100.9"},
        )
        assert r.status_code == 429


async def test_admin_sign_in_limit_is_per_forwarded_client_behind_a_proxy(
    behind_proxy: ApiEnv,
) -> None:
    gate = behind_proxy.app.admin_gate
    gate.failures = RateLimiter(2, 900, gate.clock)
    async with behind_proxy.client() as client:
        for _ in range(2):
            r = await client.post(
                "/admin/login", data={"token": "guess"}, headers={XFF: "203.0.113.7"}
            )
            assert r.status_code == 403
        r = await client.get(
            "/admin/actors", headers={"Authorization": "Bearer guess", XFF: "203.0.113.7"}
        )
        assert r.status_code == 429
        r = await client.get(
            "/admin/actors",
            headers={"Authorization": "Bearer admin-token-for-tests", XFF: "198.51.100.2"},
        )
        assert r.status_code == 200


async def test_an_ipv6_proxy_forwards_ipv4_and_ipv6_clients(
    nursery: trio.Nursery, store: Store
) -> None:
    env = await _proxied_app(nursery, store, ("::1",), host="::1")
    assert env.url.startswith("http://[::1]:")
    async with env.client() as client:
        for correlation_id, header in [
            ("v6-client", "2001:DB8::0:7"),
            ("v4-client", "203.0.113.7"),
            ("v6-chain-untrusted", "2001:db8::7, 2001:db8::66, ::1"),
        ]:
            headers = {XFF: header, "X-Request-Id": correlation_id}
            assert (await client.get("/api/install", headers=headers)).status_code == 200
    assert await _audited_ip(env, "v6-client") == "2001:db8::7"
    assert await _audited_ip(env, "v4-client") == "203.0.113.7"
    assert await _audited_ip(env, "v6-chain-untrusted") == "2001:db8::66"
