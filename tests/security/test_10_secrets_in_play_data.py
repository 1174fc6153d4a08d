"""Attack 10: secrets at rest in play data.

KV values a flow read landed in plain text in the play's layers and output, in the database
and in every answer, readable by any viewer of the company. Now a KV entry marked secret is
never shown again, and a play that reads it masks its text (``***``) in every layer, event,
output and error it records, while its steps still get the real value. And with
``FLOW8_ENCRYPT_PLAY_DATA=true`` plays' inputs and outputs are not stored as plain text at all.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
from attack_kit import Target, launch
from trio_websocket import open_websocket_url

SECRET = "canary-kv-Zq81-secret"


def _database_text(data_dir: Path) -> str:
    """The database as an attacker with the files would read it: raw bytes and rows."""
    texts = []
    for name in ("flow8.db", "flow8.db-wal"):
        if (data_dir / name).exists():
            texts.append((data_dir / name).read_bytes().decode("latin-1"))
    with sqlite3.connect(data_dir / "flow8.db") as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            texts.extend(str(row) for row in db.execute(f'SELECT doc, bulk FROM "{table}"'))
    return "\n".join(texts)


def test_a_secret_kv_value_never_shows_in_play_data(target: Target) -> None:
    company = target.attacker
    r = company.client.post("/api/kv", json={"key": "erp-token", "value": SECRET, "secret": True})
    assert r.status_code == 200, r.text
    assert r.json()["value"] == "***"
    flow = company.flow(
        [
            {"ref": "token", "appId": "kv-get", "args": {"key": "erp-token", "scope": "global"}},
            {
                "ref": "header",
                "appId": "template",
                "args": {"text": "Authorization: Bearer {{ $prev.token.value }}"},
            },
            {
                "ref": "length",
                "appId": "set",
                "args": {"value": "{{ $length($prev.token.value) }}"},
            },
            {"ref": "fail", "appId": "transform", "args": {"expression": "$error('denied')"}},
        ]
    )
    seen: list[str] = []
    with target.bystander():
        play = company.run(flow, {"order": 7}).json()
        for _ in range(5):  # and a few more reads through every way in
            seen.append(company.client.get(f"/api/plays/{play['id']}").text)
            seen.append(company.client.get(f"/api/plays/{play['id']}/layers").text)
            seen.append(company.client.get("/api/kv").text)
            seen.append(company.client.get("/api/plays").text)
    assert play["state"] == "FAIL"
    layers = {la["ref"]: la for la in company.layers(play["id"])}
    assert layers["token"]["output"] == {"value": "***", "found": True}
    assert layers["header"]["output"] == {"text": "Authorization: Bearer ***"}
    # the step got the real value: the length of the secret, not of "***"
    assert layers["length"]["output"] == len(SECRET)
    for text in seen:
        assert SECRET not in text
    assert SECRET not in _database_text(target.data_dir)
    assert SECRET not in target.logs()


async def test_events_on_the_websocket_are_masked(tmp_path: Path) -> None:
    target = launch(tmp_path)
    try:
        company = target.attacker
        company.client.post("/api/kv", json={"key": "k", "value": SECRET, "secret": True})
        flow = company.flow(
            [
                {"ref": "t", "appId": "kv-get", "args": {"key": "k", "scope": "global"}},
                {"ref": "bad", "appId": "json-parse", "args": {"text": "{{ $prev.t.value }}"}},
            ]
        )
        url = target.base.replace("http", "ws", 1) + "/ws"
        headers = [(b"authorization", f"Bearer {company.key}".encode())]
        frames: list[str] = []
        async with open_websocket_url(url, extra_headers=headers) as ws:
            await ws.send_message(json.dumps({"action": "subscribe", "flowId": flow}))
            frames.append(str(await ws.get_message()))
            async with httpx.AsyncClient(base_url=target.base, headers=company.client.headers) as c:
                play = (await c.post(f"/api/flows/{flow}/run?wait=10", json={})).json()
            assert play["state"] == "FAIL"
            while True:
                frame = str(await ws.get_message())
                frames.append(frame)
                if "play:failed" in frame:
                    break
        assert any("play:layer:failed" in f for f in frames)
        assert not any(SECRET in f for f in frames)
    finally:
        target.logs()


def test_play_data_can_be_encrypted_at_rest(tmp_path: Path) -> None:
    target = launch(tmp_path, {"FLOW8_ENCRYPT_PLAY_DATA": "true"})
    try:
        company = target.attacker
        canary = "plain-input-canary-58x"
        flow = company.flow(
            [{"ref": "echo", "appId": "set", "args": {"value": "{{ $prev.args.note }}!"}}]
        )
        with target.bystander():
            play = company.run_done(flow, {"note": canary})
        assert play["input"] == {"note": canary}  # readers with access still see it
        assert play["out"] == f"{canary}!"
        assert company.layers(play["id"])[0]["output"] == f"{canary}!"
        assert canary not in _database_text(target.data_dir)
    finally:
        target.logs()
