"""The ai providers through the official SDKs (openai, anthropic) against loopback servers
speaking each documented wire protocol (``support.ai_servers``): what goes on the wire, what
comes back, the SDKs' retries on 429 (honouring ``retry-after``) and 5xx, timeouts,
malformed answers, the host guard, prices, and an API key that appears nowhere but on the
wire, also when a flow runs through the engine.

The servers run on the test's own event loop: an SDK call that blocked the loop instead of
waiting in a worker thread would never be answered."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from components_kit import COMPANY, component_kit
from support.ai_servers import (
    HANG,
    FakeAi,
    Reply,
    anthropic_message,
    error,
    openai_chat,
    openai_embeddings,
)
from support.local_http import LocalServer, MapResolver, Seen, Start

from flow8.components import (
    ComponentConfigError,
    ComponentError,
    ComponentFailed,
    ComponentRateLimited,
    ComponentRefused,
    ProviderCatalog,
    ProviderEnv,
)
from flow8.components._ai import AiProvider
from flow8.components._ai_prices import Price, PriceTable, own_prices
from flow8.domain import AiUsage, PlayState, PlayTrace
from flow8.outbound import OutboundPolicy
from flow8.services.components import InvalidComponent

KEY = "sk-test-canary-3f1c9a0e-ai-7d2b"
CATALOG = ProviderCatalog.of()
FAST_RETRY = ("retry-after-ms", "1")  # the SDKs honour it: retries without back-off waits


def loopback_env(tmp_path: Path, *, open_loopback: bool = True) -> ProviderEnv:
    network = OutboundPolicy(allowed_cidrs=["127.0.0.1/32"] if open_loopback else [])
    return ProviderEnv(company_id="acme", files_dir=tmp_path, network=network)


def open_ai(
    provider: str, config: dict[str, Any], env: ProviderEnv, server: LocalServer | None = None
) -> AiProvider:
    spec = CATALOG.find("ai", provider)
    assert spec is not None
    if server is not None:
        root = "" if provider == "anthropic" else "/v1"
        config = {"baseUrl": f"http://127.0.0.1:{server.port}{root}", **config}
    opened = spec.open(config, env)
    assert isinstance(opened, AiProvider)
    return opened


def sent_key(seen: Seen) -> str | None:
    """The API key a request carried: Anthropic's ``x-api-key`` (SDK 0.x, 1.x) or a bearer
    token (what OpenAI's protocol and Anthropic's SDK 2.x send)."""
    if "x-api-key" in seen.headers:
        return seen.headers["x-api-key"]
    return seen.headers.get("authorization", "").removeprefix("Bearer ") or None


async def serve(start: Start, fake: FakeAi | None = None) -> tuple[FakeAi, LocalServer]:
    fake = fake or FakeAi()
    return fake, await start(fake)


CHAT = {"system": "Be brief.", "messages": [{"role": "user", "content": "Hi there"}]}


# -- the wire ------------------------------------------------------------------------------------


async def test_openai_chat_sends_the_documented_request_and_reads_the_answer(
    tmp_path: Path, start: Start
) -> None:
    fake, server = await serve(start, FakeAi([Reply(body=openai_chat(model="gpt-4o-2024-08-06"))]))
    ai = open_ai("openai", {"model": "gpt-4o", "apiKey": KEY}, loopback_env(tmp_path), server)
    got = await ai.operations["chat"](CHAT)
    await ai.aclose()
    assert fake.paths == ["POST /v1/chat/completions"]
    seen = fake.seen[0]
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.headers["content-type"] == "application/json"
    assert fake.json() == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi there"},
        ],
        "temperature": 0.7,
        "max_completion_tokens": 2048,  # OpenAI's current field (its reasoning models need it)
        "stream": False,
    }  # no tools, no streaming
    # gpt-4o-2024-08-06 is priced as gpt-4o: 12 * 2.50 + 5 * 10.00 per million
    assert got == {
        "content": "Hello from the model.",
        "model": "gpt-4o-2024-08-06",
        "finishReason": "stop",
        "tokens": {"input": 12, "output": 5},
        "cost": pytest.approx(0.00008),
    }


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_the_servers_own_sdk_environment_never_reaches_a_tenants_request(
    tmp_path: Path, start: Start, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    for name, value in {
        "OPENAI_API_KEY": "sk-operator",
        "OPENAI_ORG_ID": "org-operator",
        "OPENAI_PROJECT_ID": "proj-operator",
        "OPENAI_BASE_URL": "http://169.254.169.254/v1",
        "ANTHROPIC_API_KEY": "sk-ant-operator",
        "ANTHROPIC_BASE_URL": "http://169.254.169.254",
        "ANTHROPIC_CUSTOM_HEADERS": "x-gateway-auth: operator-secret\nx-team: operator",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }.items():
        monkeypatch.setenv(name, value)
    fake, server = await serve(start)
    ai = open_ai(provider, {"model": "m", "apiKey": KEY}, loopback_env(tmp_path), server)
    await ai.operations["chat"](CHAT)
    await ai.aclose()
    headers = fake.seen[0].headers
    assert sent_key(fake.seen[0]) == KEY
    assert "operator" not in json.dumps(headers)


@pytest.mark.parametrize(
    ("provider", "config", "auth", "cost"),
    [
        ("mistral", {"model": "mistral-small-latest", "apiKey": KEY}, f"Bearer {KEY}", 0.0000027),
        ("ollama", {"model": "llama3.2"}, "Bearer ollama", 0.0),  # no key: Ollama's placeholder
        ("ollama", {"model": "llama3.2", "apiKey": KEY}, f"Bearer {KEY}", 0.0),
        ("openai-compatible", {"model": "qwen2.5"}, "Bearer none", 0.0),
    ],
)
async def test_the_openai_compatible_providers_speak_the_same_protocol(
    tmp_path: Path,
    start: Start,
    provider: str,
    config: dict[str, Any],
    auth: str,
    cost: float,
) -> None:
    fake, server = await serve(start)
    fake.then(Reply(body=openai_chat("Bonjour", model=config["model"], input=12, output=5)))
    ai = open_ai(provider, {**config, "maxTokens": 64, "topP": 0.9}, loopback_env(tmp_path), server)
    got = await ai.operations["chat"]({**CHAT, "temperature": 0.1})
    await ai.aclose()
    assert fake.paths == ["POST /v1/chat/completions"]  # Ollama's OpenAI-compatible /v1
    assert fake.seen[0].headers["authorization"] == auth
    sent = fake.json()
    assert sent["max_tokens"] == 64
    assert "max_completion_tokens" not in sent
    assert (sent["temperature"], sent["top_p"], sent["stream"]) == (0.1, 0.9, False)
    assert got["content"] == "Bonjour"
    assert got["cost"] == pytest.approx(cost)  # mistral-small: 0.10 / 0.30 per million


async def test_openai_embeddings_answer_one_vector_per_input_in_order(
    tmp_path: Path, start: Start
) -> None:
    fake, server = await serve(start)
    ai = open_ai("openai", {"model": "gpt-4o", "apiKey": KEY}, loopback_env(tmp_path), server)
    got = await ai.operations["embeddings"]({"input": ["a", "bbb"]})
    one = await ai.operations["embeddings"]({"input": "cc", "model": "text-embedding-3-large"})
    await ai.aclose()
    assert fake.paths == ["POST /v1/embeddings"] * 2
    assert fake.json(0) == {
        "model": "text-embedding-3-small",  # the provider's embeddings model, not `model`
        "input": ["a", "bbb"],
        "encoding_format": "float",
    }
    assert got["vectors"] == [[1.0, 0.5, -1.0], [3.0, 0.5, -1.0]]  # by index, not as listed
    assert (got["dimensions"], got["model"], got["tokens"]) == (
        3,
        "text-embedding-3-small",
        {"input": 8, "output": 0},
    )
    assert got["cost"] == pytest.approx(8 * 0.02 / 1e6)
    assert fake.json(1)["input"] == ["cc"]
    assert one["model"] == "text-embedding-3-large"


async def test_anthropic_messages_over_the_wire(tmp_path: Path, start: Start) -> None:
    fake, server = await serve(start)
    fake.then(Reply(body=anthropic_message("Salut", input=20, output=7, stop="max_tokens")))
    ai = open_ai(
        "anthropic",
        {"model": "claude-sonnet-4-5", "apiKey": KEY, "maxTokens": 100},
        loopback_env(tmp_path),
        server,
    )
    history = [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Bonjour"},
        {"role": "user", "content": "How are you?"},
    ]
    got = await ai.operations["chat"]({"system": "Be brief.", "messages": history})
    await ai.aclose()
    assert fake.paths == ["POST /v1/messages"]
    seen = fake.seen[0]
    assert sent_key(seen) == KEY
    assert seen.headers["anthropic-version"]
    sent = fake.json()
    assert sent.pop("temperature", 0.7) == 0.7  # where the SDK's API version still has it
    assert sent == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "messages": history[1:],
        "system": "Be brief.\n\nAnswer in French.",
        "stream": False,
    }
    assert got == {
        "content": "Salut",
        "model": "claude-sonnet-4-5-20250929",
        "finishReason": "length",  # Anthropic's max_tokens, in OpenAI's words
        "tokens": {"input": 20, "output": 7},
        "cost": pytest.approx((20 * 3 + 7 * 15) / 1e6),
    }


async def test_anthropic_refuses_embeddings_before_sending_anything(
    tmp_path: Path, start: Start
) -> None:
    _fake, server = await serve(start)
    ai = open_ai(
        "anthropic", {"model": "claude-haiku-4-5", "apiKey": KEY}, loopback_env(tmp_path), server
    )
    with pytest.raises(ComponentRefused, match="Anthropic serves no embeddings"):
        await ai.operations["embeddings"]({"input": "x"})
    assert server.connections == 0


async def test_the_check_lists_the_models_and_says_what_answered(
    tmp_path: Path, start: Start
) -> None:
    fake, server = await serve(start)
    env = loopback_env(tmp_path)
    openai_ = open_ai("openai", {"model": "gpt-4o", "apiKey": KEY}, env, server)
    claude = open_ai("anthropic", {"model": "claude-opus-4", "apiKey": KEY}, env, server)
    said = [await openai_.check(), await claude.check()]
    assert fake.paths == ["GET /v1/models", "GET /v1/models"]
    assert sent_key(fake.seen[1]) == KEY
    assert "3 models (gpt-4o listed)" in said[0]
    assert f"127.0.0.1:{server.port}" in said[0]
    assert "(claude-opus-4 not listed)" in said[1]


# -- failures ------------------------------------------------------------------------------------


async def test_a_429_is_retried_after_what_retry_after_asks_then_answered(
    tmp_path: Path, start: Start
) -> None:
    fake, server = await serve(start)
    fake.then(
        error(429, "slow down", retry_after="0.01"), error(429, "slow down", retry_after="0.01")
    )
    ai = open_ai("openai", {"model": "gpt-4o", "apiKey": KEY}, loopback_env(tmp_path), server)
    got = await ai.operations["chat"](CHAT)
    assert got["content"] == "Hello from the model."
    assert len(fake.seen) == 3  # two refusals, retried by the SDK (maxRetries 2)
    # each retry sends the same request again
    assert len({s.body for s in fake.seen}) == 1


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_429_past_the_retries_fails_saying_what_the_provider_asked(
    tmp_path: Path, start: Start, provider: str
) -> None:
    fake, server = await serve(start)
    fake.then(*[error(429, f"Rate limit reached for {KEY}", retry_after="20")] * 2)
    ai = open_ai(
        provider, {"model": "m", "apiKey": KEY, "maxRetries": 0}, loopback_env(tmp_path), server
    )
    with pytest.raises(ComponentRateLimited) as caught:
        await ai.operations["chat"](CHAT)
    assert len(fake.seen) == 1  # maxRetries 0: no retry (and no 20 s wait)
    text = str(caught.value)
    assert text.startswith("COMPONENT_RATE_LIMITED: ")
    assert "(429)" in text
    assert "it asks to wait 20 s" in text
    assert "Rate limit reached for ***" in text  # the provider's words, the key cut out
    assert KEY not in text
    assert caught.value.retry_after == 20
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


async def test_5xx_are_retried_and_then_fail_with_the_providers_words(
    tmp_path: Path, start: Start
) -> None:
    fake, server = await serve(start)
    fake.then(error(500, "boom", retry_after_ms="1"), error(503, "overloaded", retry_after_ms="1"))
    ai = open_ai(
        "openai",
        {"model": "gpt-4o", "apiKey": KEY, "maxRetries": 1},
        loopback_env(tmp_path),
        server,
    )
    with pytest.raises(ComponentFailed) as caught:
        await ai.operations["chat"](CHAT)
    assert len(fake.seen) == 2
    assert "failed (503), still after 1 retries: overloaded" in str(caught.value)
    fake.then(error(502, "bad gateway", retry_after_ms="1"))
    assert (await ai.operations["chat"](CHAT))["content"]  # retried once, then answered
    assert len(fake.seen) == 4


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_server_that_never_answers_times_out_on_timeout_seconds(
    tmp_path: Path, start: Start, provider: str
) -> None:
    fake, server = await serve(start, FakeAi([HANG, HANG]))
    config = {"model": "m", "apiKey": KEY, "timeoutSeconds": 0.2, "maxRetries": 1}
    ai = open_ai(provider, config, loopback_env(tmp_path), server)
    with pytest.raises(
        ComponentFailed, match=r"did not answer within 0.2 s \(timeoutSeconds; tried 2 times\)"
    ):
        await ai.operations["chat"](CHAT)
    assert len(fake.seen) == 2


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (Reply(body=b"<html>oops</html>", headers=(("Content-Type", "text/html"),)), "malformed"),
        (Reply(body=b"{not json"), "malformed"),
        (Reply(body={"id": "x", "object": "chat.completion"}), "no choices"),
        (Reply(body={**openai_chat(), "choices": []}), "no choices"),
        (Reply(body=openai_chat(content=5)), "message is int"),  # type: ignore[arg-type]
        (Reply(body={**openai_chat(), "usage": {"prompt_tokens": "many"}}), "token count"),
    ],
)
async def test_a_malformed_chat_answer_fails_clearly(
    tmp_path: Path, start: Start, answer: Reply, words: str
) -> None:
    _fake, server = await serve(start, FakeAi([answer]))
    ai = open_ai("openai", {"model": "gpt-4o", "apiKey": KEY}, loopback_env(tmp_path), server)
    with pytest.raises(ComponentFailed) as caught:
        await ai.operations["chat"](CHAT)
    assert "answered something malformed" in str(caught.value)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    "answer",
    [
        {"object": "list", "data": [], "model": "m"},  # no vector for the input
        openai_embeddings([[1.0, 2.0], [1.0]]),  # two for one input, of different lengths
        openai_embeddings([["a", "b"]]),  # type: ignore[list-item]
    ],
)
async def test_malformed_embeddings_fail_clearly(
    tmp_path: Path, start: Start, answer: dict[str, Any]
) -> None:
    _fake, server = await serve(start, FakeAi([Reply(body=answer)]))
    ai = open_ai("openai", {"model": "gpt-4o", "apiKey": KEY}, loopback_env(tmp_path), server)
    with pytest.raises(ComponentFailed, match="answered something malformed"):
        await ai.operations["embeddings"]({"input": "x"})


async def test_a_malformed_anthropic_answer_fails_clearly(tmp_path: Path, start: Start) -> None:
    _fake, server = await serve(start, FakeAi([Reply(body={"type": "message", "content": "x"})]))
    ai = open_ai(
        "anthropic", {"model": "claude-3-haiku", "apiKey": KEY}, loopback_env(tmp_path), server
    )
    with pytest.raises(ComponentFailed, match="malformed: no content blocks"):
        await ai.operations["chat"](CHAT)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_refusals_say_the_status_and_never_the_key(
    tmp_path: Path, start: Start, provider: str
) -> None:
    fake, server = await serve(start)
    fake.then(
        error(401, f"Incorrect API key provided: {KEY}"),
        error(400, f"temperature is out of range for key {KEY}"),
        error(404, "The model `gpt-9` does not exist"),
    )
    ai = open_ai(provider, {"model": "gpt-9", "apiKey": KEY}, loopback_env(tmp_path), server)
    errors: list[ComponentError] = []
    for _ in range(3):
        with pytest.raises(ComponentError) as caught:
            await ai.operations["chat"](CHAT)
        errors.append(caught.value)
    assert len(fake.seen) == 3  # 4xx are not retried
    texts = [str(e) for e in errors]
    assert isinstance(errors[0], ComponentFailed)
    assert "refused the API key (401): check apiKey" in texts[0]
    assert isinstance(errors[1], ComponentRefused)
    assert "refused the request (400): temperature is out of range for key ***" in texts[1]
    assert "no such model or endpoint (404): The model `gpt-9` does not exist" in texts[2]
    assert not any(KEY in t or KEY in repr(e.args) for t, e in zip(texts, errors, strict=True))
    assert all(e.__cause__ is None for e in errors)


async def test_chat_inputs_are_checked_before_anything_is_sent(
    tmp_path: Path, start: Start
) -> None:
    _fake, server = await serve(start)
    ai = open_ai("openai", {"model": "gpt-4o", "apiKey": KEY}, loopback_env(tmp_path), server)
    chat = ai.operations["chat"]
    for bad, words in [
        ({}, "messages must be a non-empty list"),
        ({"messages": [{"role": "tool", "content": "x"}]}, r"messages\[0\] must be"),
        ({**CHAT, "temperature": 3}, "temperature must be a number from 0 to 2"),
        ({**CHAT, "maxTokens": 0}, "maxTokens must be a whole number"),
        ({**CHAT, "system": 5}, "system must be text"),
    ]:
        with pytest.raises(ComponentRefused, match=words):
            await chat(bad)
    with pytest.raises(ComponentRefused, match="input must be a non-empty text"):
        await ai.operations["embeddings"]({"input": []})
    assert server.connections == 0


# -- the host guard and the config -------------------------------------------------------------


async def test_a_base_url_the_operator_did_not_open_is_refused_without_connecting(
    tmp_path: Path, start: Start
) -> None:
    _fake, server = await serve(start)
    env = loopback_env(tmp_path, open_loopback=False)
    for provider in ("openai-compatible", "anthropic"):
        ai = open_ai(provider, {"model": "m", "apiKey": KEY}, env, server)
        with pytest.raises(ComponentRefused, match=r"baseUrl host '127\.0\.0\.1' is not open"):
            await ai.operations["chat"](CHAT)
        with pytest.raises(ComponentRefused):
            await ai.check()
    assert server.connections == 0


async def test_a_named_host_is_reached_at_the_address_that_was_checked(
    tmp_path: Path, start: Start
) -> None:
    """Over plain HTTP the SDK connects to the address the policy checked (``llm.test``
    resolves nowhere but in this resolver), the name kept in the Host header."""
    fake, server = await serve(start)
    env = ProviderEnv(
        company_id="acme",
        files_dir=tmp_path,
        network=OutboundPolicy(allowed_hosts=["llm.test"]),
        resolver=MapResolver({"llm.test": ["127.0.0.1"]}),
    )
    base = f"http://llm.test:{server.port}/v1"
    ai = open_ai("ollama", {"model": "llama3.2", "baseUrl": base}, env)
    assert (await ai.operations["chat"](CHAT))["content"] == "Hello from the model."
    assert fake.seen[0].headers["host"] == f"llm.test:{server.port}"
    await ai.aclose()


async def test_ollama_defaults_to_localhost_which_is_refused_unless_opened(
    tmp_path: Path,
) -> None:
    ai = open_ai("ollama", {"model": "llama3.2"}, loopback_env(tmp_path, open_loopback=False))
    assert ai.settings.base_url == "http://localhost:11434/v1"
    with pytest.raises(ComponentRefused, match="not open to components"):
        await ai.operations["chat"](CHAT)


# Run in a fresh interpreter, where no SDK is imported yet: the catalog's provider as the
# component service loads it the first time a company's component is opened or saved.
_FIRST_LOAD = """
import gc, json, sys, threading, trio
from flow8.components import ProviderCatalog
on_main = {}
def seen(event, args):
    if event == "import" and args[0] in ("openai", "anthropic"):
        on_main.setdefault(args[0], threading.current_thread() is threading.main_thread())
sys.addaudithook(seen)
gc.collect()
gc.freeze()  # as flow8 serve settles once it is up
spec = ProviderCatalog.of().find("ai", sys.argv[1])
trio.run(spec.load)
print(json.dumps({"on_main": on_main, "in_sight": len(gc.get_objects())}))
"""


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_an_sdk_is_imported_off_the_event_loop_then_kept_out_of_the_collectors_sight(
    provider: str,
) -> None:
    """The first use of an AI component imports its SDK (a second or two for anthropic's on
    the 2-core box) in a worker thread, not on the event loop every tenant shares; what the
    SDK brought (~170,000 objects for both) is then frozen like start-up's, or every later
    full collection would walk it with the loop paused (120-140 ms measured)."""
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_LOAD, provider],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["on_main"] == {provider: False}
    assert seen["in_sight"] < 20_000


@pytest.mark.parametrize(
    ("provider", "config", "words"),
    [
        ("openai-compatible", {"model": "m"}, "needs baseUrl"),
        ("openai", {"model": "m"}, "needs apiKey"),
        ("anthropic", {"model": "m", "apiKey": ""}, "needs apiKey"),
        ("openai", {"model": "m", "apiKey": KEY, "baseUrl": "ftp://x"}, r"http\(s\) URL"),
        ("openai", {"model": "m", "apiKey": KEY, "baseUrl": "http://u:p@x/v1"}, "user name"),
    ],
)
def test_configs_that_cannot_work_are_refused_when_opened(
    tmp_path: Path, provider: str, config: dict[str, Any], words: str
) -> None:
    with pytest.raises(ComponentConfigError, match=words):
        open_ai(provider, config, loopback_env(tmp_path))


def test_the_catalog_publishes_the_ai_providers_with_their_secret_and_extra() -> None:
    specs = {s.provider: s for s in CATALOG if s.kind == "ai"}
    assert set(specs) == {"openai", "anthropic", "mistral", "ollama", "openai-compatible"}
    for spec in specs.values():
        assert spec.secret_fields == ("apiKey",)
        assert spec.extra == "ai"
        assert not spec.builtin_default
        properties = spec.config_schema["properties"]
        for name in ("model", "apiKey", "baseUrl", "temperature", "maxTokens", "timeoutSeconds",
                     "maxRetries", "topP", "prices"):  # fmt: skip
            assert name in properties
    assert "baseUrl" in specs["openai-compatible"].config_schema["required"]
    assert "apiKey" not in specs["ollama"].config_schema["required"]


# -- prices ------------------------------------------------------------------------------------


async def test_prices_of_models_with_a_dot_are_given_as_a_list(tmp_path: Path) -> None:
    """The store takes no dot in a field name: ``{"gpt-4.1": ...}`` is refused when saved,
    saying so, and the list form holds any model name."""
    config = {"model": "gpt-4.1", "apiKey": KEY}
    async with component_kit(tmp_path) as kit:
        with pytest.raises(InvalidComponent) as caught:
            await kit.component(
                "ai", "openai", {**config, "prices": {"gpt-4.1": {"inputPerMillion": 1,
                                                                   "outputPerMillion": 1}}}
            )  # fmt: skip
        assert caught.value.problems[0].field == "config.prices"
        listed = [{"model": "gpt-4.1", "inputPerMillion": 1, "outputPerMillion": 3}]
        made = await kit.component("ai", "openai", {**config, "prices": listed})
        assert made.config["prices"] == listed
    table = PriceTable("openai", own_prices(listed))
    assert table.price("gpt-4.1-2025-04-14") == Price(1, 3)


def test_prices_own_entries_first_then_the_built_in_table_then_nothing() -> None:
    own = own_prices({"gpt-4o": {"inputPerMillion": 1, "outputPerMillion": 2}})
    table = PriceTable("openai", own)
    assert table.price("gpt-4o") == Price(1, 2)  # the component's own wins
    assert table.price("gpt-4o-2024-08-06") == Price(1, 2)  # a snapshot of its model
    assert table.price("gpt-4o-mini-2024-07-18") == Price(0.15, 0.60)  # not gpt-4o's
    assert table.price("unknown-model") == Price(0, 0)
    assert table.price("", "gpt-4.1-nano") == Price(0.10, 0.40)  # the model that answered
    assert PriceTable("anthropic").price("claude-sonnet-4-5-20250929") == Price(3, 15)
    assert PriceTable("anthropic").price("claude-opus-4-5") == Price(5, 25)
    assert PriceTable("mistral").price("mistral-large-latest") == Price(2, 6)
    assert PriceTable("ollama").price("llama3.2") == Price(0, 0)
    assert PriceTable("ollama", own_prices({"llama3.2": {"inputPerMillion": 0.5,
                                                        "outputPerMillion": 0.5}})).cost(
        2_000_000, 0, "llama3.2"
    ) == 1.0  # fmt: skip


# -- through the engine ------------------------------------------------------------------------


def _stored_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in tmp_path.glob("flow8.db*"))


async def test_a_flow_chats_and_the_key_appears_nowhere_but_on_the_wire(
    tmp_path: Path,
    start: Start,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake, server = await serve(start)
    base = f"http://127.0.0.1:{server.port}/v1"
    # The model answers an expression: it stays text, evaluated by no later step.
    fake.then(Reply(body=openai_chat("{{ $flowId }} and {{ $kvGlobal('x') }}", model="qwen2.5")))
    async with component_kit(tmp_path) as kit:
        prices = [{"model": "qwen2.5", "inputPerMillion": 1000, "outputPerMillion": 2000}]
        good = await kit.component(
            "ai",
            "openai-compatible",
            {"model": "qwen2.5", "apiKey": KEY, "baseUrl": base, "prices": prices},
        )
        bad = await kit.component(
            "ai",
            "openai",
            {"model": "gpt-4o", "apiKey": KEY, "baseUrl": base, "maxRetries": 0},
            name="bad",
            default=False,
        )
        flow = [
            {"ref": "ask", "appId": "chat", "args": {
                "systemPrompt": "Be brief.", "userMessage": "{{ $prev.args.q }}",
                "history": [{"role": "assistant", "content": "Hello"}]}},
            {"ref": "echo", "appId": "set", "index": 1,
             "args": {"value": "{{ $prev.ask.response }}"}},
        ]  # fmt: skip
        play, layers = await kit.run(flow, {"q": "What is {{ 1 + 1 }}?"}, record=True)
        assert play.state is PlayState.DONE, play.error
        out = layers["ask"].output
        assert out == {
            "response": "{{ $flowId }} and {{ $kvGlobal('x') }}",
            "tokens": {"input": 12, "output": 5},
            "model": "qwen2.5",
            "finishReason": "stop",
        }
        assert layers["echo"].output == "{{ $flowId }} and {{ $kvGlobal('x') }}"
        # What the call spent is on its layer, priced by the component's own table.
        cost = (12 * 1000 + 5 * 2000) / 1e6
        assert layers["ask"].usage == (AiUsage("openai-compatible", "qwen2.5", 12, 5, cost),)
        sent = fake.json(0)
        assert sent["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "What is {{ 1 + 1 }}?"},  # the input's text, as data
        ]
        assert [c["operation"] for c in layers["ask"].calls or ()] == ["chat"]

        fake.then(error(401, f"Incorrect API key provided: {KEY}"))
        refused, refused_layers = await kit.run(
            [{"ref": "ask", "appId": "chat", "componentConfigIds": {"ai": "bad"},
              "args": {"userMessage": "hi"}}],
            record=True,
        )  # fmt: skip
        assert refused.state is PlayState.FAIL
        assert "refused the API key (401)" in (refused_layers["ask"].error or "")

        listed = await kit.components.list(COMPANY)
        assert {c.name: c.secret_fields for c in listed} == {
            good.name: ("apiKey",),
            bad.name: ("apiKey",),
        }
        answers = [
            listed,
            await kit.components.get(COMPANY, good.id),
            await kit.components.test(COMPANY, good.id),
            kit.components.providers(),
        ]
        assert answers[2]["ok"] is True
        all_layers = [*layers.values(), *refused_layers.values()]
        plays = [await kit.engine.get_play(COMPANY, p.id) for p in (play, refused)]
        everything = json.dumps(
            {
                "layers": [repr(la) for la in all_layers],
                "calls": [la.calls for la in all_layers],
                "plays": [repr(p) for p in (play, refused, *plays)],
                "events": [repr(e) for e in kit.events],
                "answers": repr(answers),
            },
            default=str,
        )
        assert KEY not in everything
    # On the wire, every time: the two chats and the check.
    assert [s.headers["authorization"] for s in fake.seen] == [f"Bearer {KEY}"] * 3
    out_, err = capsys.readouterr()
    assert KEY not in out_ + err
    assert KEY not in caplog.text
    assert KEY.encode() not in _stored_bytes(tmp_path)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_traced_plays_ai_requests_join_its_trace_each_with_a_span_of_its_own(
    tmp_path: Path, start: Start, provider: str
) -> None:
    """A play started by a request that carried a W3C ``traceparent``: every request its AI
    step sends through the SDK (the SDK's retry too) continues that trace with a span id of
    its own; a play started without one sends none."""
    fake, server = await serve(start)
    fake.then(error(503, "overloaded", retry_after_ms="1"))  # answered on the SDK's retry
    root = "" if provider == "anthropic" else "/v1"
    base = f"http://127.0.0.1:{server.port}{root}"
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    async with component_kit(tmp_path) as kit:
        await kit.component("ai", provider, {"model": "m", "apiKey": KEY, "baseUrl": base})
        flow = [{"ref": "ask", "appId": "chat", "args": {"userMessage": "hi"}}]
        traced, _ = await kit.run(flow, trace=PlayTrace("req-1", trace_id, "01"))
        assert traced.state is PlayState.DONE, traced.error
        plain, _ = await kit.run(flow)
        assert plain.state is PlayState.DONE, plain.error
    chats = [s for s in fake.seen if "/models" not in s.target]
    assert len(chats) == 3  # the refused try, its retry, the untraced play's
    spans = []
    for seen in chats[:2]:
        version, trace, span, flags = seen.headers["traceparent"].split("-")
        assert (version, trace, flags) == ("00", trace_id, "01")
        spans.append(span)
    assert len(set(spans)) == 2  # each a span of its own
    assert parent not in spans
    assert "traceparent" not in chats[2].headers


async def test_a_flow_needs_an_ai_component(tmp_path: Path) -> None:
    from flow8.services.flows import FlowValidationError

    async with component_kit(tmp_path) as kit:
        with pytest.raises(FlowValidationError, match="ai"):
            await kit.run([{"ref": "c", "appId": "chat", "args": {"userMessage": "hi"}}])
