"""curl and wget through the request component: real servers on loopback, the outbound
guard in front of them, credentials applied on the wire and nowhere else."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from components_kit import COMPANY, OTHER, Kit, component_kit
from support.local_http import LocalServer, MapResolver, Seen, Start, reply

from flow8.domain import PlayState
from flow8.services.components import InvalidComponent
from flow8.services.flows import FlowValidationError

LOOPBACK = {"allowedCidrs": ["127.0.0.1/32"]}


async def echo(request: Seen, stream: Any, server: LocalServer) -> None:
    """Answers what it was asked, as JSON (so a leak into an answer would show)."""
    body = {
        "method": request.method,
        "target": request.target,
        "headers": request.headers,
        "body": request.body.decode("utf-8", "replace"),
    }
    await reply(stream, 200, json.dumps(body).encode(), [("Content-Type", "application/json")])


def stored_bytes(tmp_path: Path) -> bytes:
    """Every byte of the store's files (database and WAL), as they lie on disk."""
    return b"".join(p.read_bytes() for p in tmp_path.glob("flow8.db*"))


async def curl(kit: Kit, args: dict[str, Any], **kw: Any) -> tuple[Any, Any]:
    play, layers = await kit.run([{"ref": "c", "appId": "curl", "args": args}], **kw)
    return play, layers["c"]


async def test_curl_sends_json_form_and_query_and_answers_status_headers_and_body(
    tmp_path: Path, start: Start
) -> None:
    server = await start(echo)
    base = f"http://127.0.0.1:{server.port}"
    async with component_kit(tmp_path) as kit:
        await kit.component("request", "http", LOOPBACK)
        play, layer = await curl(
            kit,
            {
                "method": "POST",
                "url": f"{base}/orders?x=1",
                "query": {"tag": ["a", "b"], "n": 2},
                "headers": {"X-Trace": "t-1"},
                "body": {"sku": "A-1", "qty": 2},
            },
        )
        assert play.state is PlayState.DONE, play.error
        out = layer.output
        assert out["statusCode"] == 200
        assert out["headers"]["content-type"] == "application/json"
        assert out["body"]["method"] == "POST"
        assert out["body"]["target"] == "/orders?x=1&tag=a&tag=b&n=2"
        assert out["body"]["headers"]["x-trace"] == "t-1"
        assert out["body"]["headers"]["content-type"] == "application/json"
        assert json.loads(out["body"]["body"]) == {"sku": "A-1", "qty": 2}
        assert out["duration"] > 0
        _, layer = await curl(
            kit, {"method": "PUT", "url": base, "bodyForm": {"a": "1 2", "b": "x&y"}}
        )
        assert layer.output["body"]["body"] == "a=1+2&b=x%26y"
        _, layer = await curl(kit, {"url": base, "responseType": "binary"})
        assert json.loads(base64.b64decode(layer.output["body"]))["method"] == "GET"


async def test_an_error_status_fails_the_step_unless_asked_not_to(
    tmp_path: Path, start: Start
) -> None:
    async def missing(request: Seen, stream: Any, server: LocalServer) -> None:
        await reply(stream, 404, b"no such order")

    server = await start(missing)
    url = f"http://127.0.0.1:{server.port}/orders/9"
    async with component_kit(tmp_path) as kit:
        await kit.component("request", "http", LOOPBACK)
        play, layer = await curl(kit, {"url": url})
        assert play.state is PlayState.FAIL
        assert layer.error == f"HTTP 404 from {url}: no such order"
        play, layer = await curl(kit, {"url": url, "failOnStatus": False})
        assert play.state is PlayState.DONE
        assert (layer.output["statusCode"], layer.output["body"]) == (404, "no such order")


# Internal addresses in many spellings, as test_outbound_ssrf has them, through a step.
INTERNAL = [
    "http://127.0.0.1:{p}/",
    "http://localhost:{p}/",
    "http://2130706433:{p}/",
    "http://0177.0.0.1:{p}/",
    "http://0x7f000001:{p}/",
    "http://127.1:{p}/",
    "http://0.0.0.0:{p}/",
    "http://[::1]:{p}/",
    "http://[::ffff:127.0.0.1]:{p}/",
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/",
    "http://10.0.0.1:{p}/",
    "http://192.168.0.1:{p}/",
    "http://100.64.0.1:{p}/",
    "http://[fe80::1]:{p}/",
    "http://[fd00:ec2::254]/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{p}/_GET%20/",
    "ftp://127.0.0.1:{p}/",
    "http://rebound.example:{p}/",  # DNS answers loopback
    "http://mixed.example:{p}/",  # one public answer, one internal
]


async def test_the_default_request_component_reaches_nothing_internal(
    tmp_path: Path, start: Start
) -> None:
    """No request component configured: the built-in default, guard on. Every internal
    spelling, a hostile DNS answer, a redirect to loopback and a non-http scheme fail the
    step with OUTBOUND_REFUSED, and the servers see no connection at all."""
    server = await start(echo)
    resolver = MapResolver(
        {"rebound.example": ["127.0.0.1"], "mixed.example": ["93.184.216.34", "127.0.0.1"]}
    )
    async with component_kit(tmp_path, resolver=resolver) as kit:
        flowlets = [
            {
                "ref": f"c{i}",
                "appId": "curl",
                "index": i,
                "args": {"url": url.format(p=server.port)},
            }
            for i, url in enumerate(INTERNAL)
        ]
        for flowlet in flowlets:
            play, layers = await kit.run([flowlet])
            error = layers[flowlet["ref"]].error or ""
            assert play.state is PlayState.FAIL, flowlet
            assert error.startswith("OUTBOUND_REFUSED: "), (flowlet, error)
    assert server.connections == 0


async def test_a_redirect_into_the_network_is_refused_and_an_allowed_host_is_reached(
    tmp_path: Path, start: Start
) -> None:
    inside = await start(echo, name="inside")

    async def to_inside(request: Seen, stream: Any, server: LocalServer) -> None:
        await reply(stream, 302, b"", [("Location", f"http://127.0.0.1:{inside.port}/")])

    outside = await start(to_inside, host="127.0.0.2", name="outside")
    async with component_kit(tmp_path) as kit:
        # Allowed: 127.0.0.2 only (the company's own service). The redirect aims elsewhere.
        await kit.component("request", "http", {"allowedCidrs": ["127.0.0.2/32"]})
        play, layer = await curl(kit, {"url": f"http://127.0.0.2:{outside.port}/"})
        assert play.state is PlayState.FAIL
        assert "OUTBOUND_REFUSED" in (layer.error or "")
        assert "redirected from" in (layer.error or "")
        assert inside.connections == 0
        # A named component that allows it reaches it, chosen by name in the step.
        await kit.component(
            "request", "http", {"allowedCidrs": ["127.0.0.0/8"]}, name="internal-api", default=False
        )
        play, layers = await kit.run(
            [{"ref": "c", "appId": "curl", "componentConfigIds": {"request": "internal-api"},
              "args": {"url": f"http://127.0.0.2:{outside.port}/"}}]
        )  # fmt: skip
        assert play.state is PlayState.DONE, play.error
        assert layers["c"].output["body"]["method"] == "GET"
        assert inside.connections == 1


@pytest.mark.parametrize(
    ("type_", "data", "sent"),
    [
        ("bearer", {"token": "{canary}"}, ("authorization", "Bearer {canary}")),
        ("basic", {"username": "ops", "password": "{canary}"}, ("authorization", "Basic {b64}")),
        ("apiKey", {"key": "{canary}", "header": "X-Api-Token"}, ("x-api-token", "{canary}")),
        ("apiKey", {"key": "{canary}", "query": "api_key"}, ("?", "api_key={canary}")),
        (
            "oauth2",
            {"clientId": "id", "clientSecret": "s3cret-client", "accessToken": "{canary}"},
            ("authorization", "Bearer {canary}"),
        ),
    ],
)
async def test_a_credential_is_applied_on_the_wire_and_appears_nowhere_else(
    tmp_path: Path,
    start: Start,
    capsys: pytest.CaptureFixture[str],
    type_: str,
    data: dict[str, str],
    sent: tuple[str, str],
) -> None:
    canary = "canary-7f3a9c1e-d00d-4b1e-9e55-" + type_.lower()
    b64 = base64.b64encode(f"ops:{canary}".encode()).decode()
    data = {k: v.format(canary=canary) for k, v in data.items()}
    server = await start(echo)
    async with component_kit(tmp_path) as kit:
        await kit.component("request", "http", LOOPBACK)
        cred = await kit.credential(type_, data)
        play, layers = await kit.run(
            [
                {"ref": "ok", "appId": "curl",
                 "args": {"url": f"http://127.0.0.1:{server.port}/x", "credentialId": cred}},
                {"ref": "bad", "appId": "curl",
                 "args": {"url": "http://127.0.0.1:1/{{ $prev.ok.body.headers }}",
                          "credentialId": cred}},
            ],
            record=True,
        )  # fmt: skip
        assert play.state is PlayState.FAIL  # the second step: nothing listens on port 1
        seen = server.requests[0]
        name, value = sent[0], sent[1].format(canary=canary, b64=b64)
        if name == "?":
            assert seen.target == f"/x?{value}"
        else:
            assert seen.headers[name] == value
        # The server echoed it back: the step's output holds it, masked.
        assert "***" in json.dumps(layers["ok"].output)
        assert [c["operation"] for c in layers["ok"].calls or ()] == ["send"]
        everything = json.dumps(
            {
                "layers": [repr(la) for la in layers.values()],
                "calls": [la.calls for la in layers.values()],
                "play": repr(play),
                "events": [repr(e) for e in kit.events],
                "credential": repr(await kit.credentials.get(COMPANY, cred)),
            }
        )
        assert canary not in everything
        assert b64 not in everything
    out, err = capsys.readouterr()
    assert canary not in out + err
    stored = stored_bytes(tmp_path)
    assert canary.encode() not in stored
    assert b64.encode() not in stored


async def test_recorded_calls_hold_what_was_asked_and_answered(
    tmp_path: Path, start: Start
) -> None:
    server = await start(echo)
    async with component_kit(tmp_path) as kit:
        await kit.component("request", "http", LOOPBACK)
        await kit.component("storage", "local", {"rootPath": "dl"})
        url = f"http://127.0.0.1:{server.port}/report"
        play, layers = await kit.run(
            [{"ref": "get", "appId": "wget", "args": {"url": url, "path": "r.json"}}],
            record=True,
        )
        assert play.state is PlayState.DONE, play.error
        calls = layers["get"].calls
        assert [(c["componentKind"], c["operation"], c["seq"]) for c in calls] == [
            ("request", "send", 1),
            ("storage", "write", 2),
        ]
        assert calls[0]["input"]["url"] == url
        assert calls[0]["output"]["statusCode"] == 200
        body = base64.b64decode(calls[0]["output"]["content"]["base64"])
        assert json.loads(body)["target"] == "/report"
        assert calls[1]["output"] == {"path": "r.json", "size": len(body)}
        assert all(c["durationMs"] >= 0 and c["error"] is None for c in calls)
        assert layers["get"].output == {
            "path": "r.json",
            "size": len(body),
            "mimeType": "application/json",
        }
        # Without recordCalls, nothing is recorded.
        _, layers = await kit.run(
            [{"ref": "get", "appId": "wget", "args": {"url": url, "path": "r2.json"}}]
        )
        assert layers["get"].calls is None


async def test_a_post_is_not_idempotent_unless_it_sends_an_idempotency_key(
    tmp_path: Path,
) -> None:
    async with component_kit(tmp_path) as kit:
        curl_spec = kit.engine.registry.get("curl")
        assert curl_spec.is_idempotent({"url": "u"})
        assert curl_spec.is_idempotent({"url": "u", "method": "HEAD"})
        assert not curl_spec.is_idempotent({"url": "u", "method": "POST"})
        assert curl_spec.is_idempotent(
            {"url": "u", "method": "POST", "headers": {"idempotency-key": "k1"}}
        )


async def test_one_company_cannot_name_another_companys_component_or_credential(
    tmp_path: Path,
) -> None:
    async with component_kit(tmp_path) as kit:
        theirs = await kit.component("request", "http", LOOPBACK, name="theirs", company=OTHER)
        cred = await kit.credential("bearer", {"token": "their-token-1234"}, company=OTHER)
        for choice in (theirs.id, "theirs"):
            with pytest.raises(FlowValidationError) as refused:
                await kit.run(
                    [{"ref": "c", "appId": "curl", "componentConfigIds": {"request": choice},
                      "args": {"url": "https://example.com"}}]
                )  # fmt: skip
            assert f"no request component {choice!r} in this company" in str(refused.value)
        with pytest.raises(FlowValidationError) as refused:
            await kit.run(
                [{"ref": "c", "appId": "curl",
                  "args": {"url": "https://example.com", "credentialId": cred}}]
            )  # fmt: skip
        assert f"no credential {cred!r} in this company" in str(refused.value)
        # Named through an expression, it is not found when the step runs either.
        play, layers = await kit.run(
            [{"ref": "c", "appId": "curl",
              "args": {"url": "https://example.com", "credentialId": "{{ $prev.args.c }}"}}],
            {"c": cred},
        )  # fmt: skip
        assert play.state is PlayState.FAIL
        assert "no credential" in (layers["c"].error or "")


async def test_a_ca_bundle_is_certificates_not_a_file_of_the_server(tmp_path: Path) -> None:
    async with component_kit(tmp_path) as kit:
        for text in ("/etc/ssl/certs/ca-certificates.crt", "/etc/passwd", "not a certificate"):
            with pytest.raises(InvalidComponent) as refused:
                await kit.component("request", "http", {"caBundle": text})
            assert "caBundle holds no PEM certificate" in str(refused.value)
