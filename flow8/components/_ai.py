"""What the AI providers (``ai/openai``, ``ai/anthropic``, ``ai/mistral``, ``ai/ollama``,
``ai/openai-compatible``) share: their config, the two operations' shapes, the guard on the
API's host, the worker thread every SDK call runs in, and what an SDK's failure tells the
flow.

**Operations.**

* ``chat {system?, messages: [{role: user|assistant|system, content}], model?, temperature?,
  maxTokens?, topP?}`` -> ``{content, model, finishReason, tokens: {input, output}, cost}``.
  ``finishReason`` is said in OpenAI's words whatever the provider (``stop``, ``length``,
  ``content_filter``, or the provider's own word for anything else).
* ``embeddings {input: text | [text], model?}`` -> ``{vectors, dimensions, model, tokens:
  {input, output}, cost}`` (not ``ai/anthropic``: Anthropic serves no embeddings).

``cost`` comes from the component's price table (``_ai_prices``). Calls are plain,
tool-free, non-streaming requests through the official SDKs' **sync** clients, each in a
worker thread (``ProviderEnv.in_thread``); the SDK's own retries (``maxRetries``, honouring
``retry-after``) and timeout (``timeoutSeconds``, per request) apply.

**The host.** The API's base URL (the provider's public one, or ``baseUrl``) is checked
against the server's network policy before the first call and every few minutes
(``_object_store.Guard``), and every request the SDK sends passes the guard in the worker
thread (a custom ``httpx2`` transport): over plain HTTP it goes to the checked address, and a
request anywhere else (a redirect) is refused. Nothing of the server's own environment
reaches a tenant's request: no proxy, and none of what the SDKs read from it (a key, a base
URL, an organization, extra headers; each provider module says how).

**The API key** is held in a :class:`Secret` (its repr is ``***``); messages are built here
from the status and the provider's error text with the key cut out, never from the SDK's
exception (which may carry the request), and no SDK exception is chained to ours.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

import attrs
import httpx2
import trio

from ._ai_prices import PriceTable, own_prices
from ._object_store import Guard, GuardRefused, Origin, parse_origin
from ._provider import Operation, ProviderEnv
from ._seam import outbound_traceparent
from ._sql_server import Secret, one_line
from .exceptions import (
    ComponentConfigError,
    ComponentError,
    ComponentFailed,
    ComponentRateLimited,
    ComponentRefused,
)

T = TypeVar("T")

DEFAULT_TEMPERATURE = 0.7
DEFAULT_MAX_TOKENS = 2048
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_RETRIES = 2  # the SDKs' own default
MAX_MESSAGES = 1000
MAX_INPUTS = 2048  # texts in one embeddings call (OpenAI's limit)
ROLES = ("user", "assistant", "system")
_QUOTED = 300  # characters of a provider's error text a message quotes


@attrs.frozen
class AiSettings:
    """One component's config, checked."""

    provider: str
    model: str
    embedding_model: str | None
    api_key: Secret
    base_url: str
    origin: Origin
    temperature: float
    max_tokens: int
    timeout: float
    max_retries: int
    top_p: float | None
    prices: PriceTable

    @property
    def where(self) -> str:
        """The API, as messages name it (host and port, never a key)."""
        origin = self.origin
        return f"the {self.provider} API at {origin.host}:{origin.port}"


def settings_of(
    provider: str,
    config: Mapping[str, Any],
    *,
    base_url: str | None,
    key_required: bool,
    placeholder_key: str = "none",
    embedding_model: str | None = None,
) -> AiSettings:
    """``config`` checked: ``base_url`` is the provider's own API (None: ``baseUrl`` is
    required); ``key_required`` refuses a config without ``apiKey``, else a server that
    wants none gets ``placeholder_key`` (the SDKs send some key)."""
    url = config.get("baseUrl") or base_url
    if not url:
        raise ComponentConfigError(f"the ai/{provider} provider needs baseUrl (the API's URL)")
    origin = parse_origin(url, "baseUrl")
    key = config.get("apiKey")
    if not key and key_required:
        raise ComponentConfigError(f"the ai/{provider} provider needs apiKey")
    model = config.get("model")
    if not isinstance(model, str) or not model:
        raise ComponentConfigError("model is required (the model a step uses unless it names one)")
    return AiSettings(
        provider=provider,
        model=model,
        embedding_model=config.get("embeddingModel") or embedding_model,
        api_key=Secret(str(key) if key else placeholder_key),
        base_url=str(url).strip().rstrip("/"),
        origin=origin,
        temperature=float(config.get("temperature", DEFAULT_TEMPERATURE)),
        max_tokens=int(config.get("maxTokens", DEFAULT_MAX_TOKENS)),
        timeout=float(config.get("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS)),
        max_retries=int(config.get("maxRetries", DEFAULT_MAX_RETRIES)),
        top_p=float(config["topP"]) if config.get("topP") is not None else None,
        prices=PriceTable(provider, own_prices(config.get("prices"))),
    )


# -- the operations' inputs and outputs ------------------------------------------------------


@attrs.frozen
class ChatRequest:
    """A ``chat`` input, checked, with the component's defaults filled in."""

    system: str | None
    messages: tuple[tuple[str, str], ...]  # (role, content)
    model: str
    temperature: float
    max_tokens: int
    top_p: float | None


@attrs.frozen
class ChatAnswer:
    """What a provider answered a chat, read out of its SDK's response."""

    content: str
    model: str
    finish_reason: str
    input_tokens: int
    output_tokens: int


@attrs.frozen
class Embedded:
    vectors: list[list[float]]
    model: str
    input_tokens: int


class Malformed(Exception):
    """The provider's answer is not what its protocol says (raised in the worker thread)."""


def _number(input: Mapping[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = input.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ComponentRefused(f"{name} must be a number from {low:g} to {high:g}")
    return float(value)


def _model(input: Mapping[str, Any], default: str | None) -> str:
    model = input.get("model") or default
    if not isinstance(model, str) or not model.strip():
        raise ComponentRefused("model must be a model name (the component sets none for this)")
    return model.strip()


def chat_request(input: Mapping[str, Any], settings: AiSettings) -> ChatRequest:
    system = input.get("system")
    if system is not None and not isinstance(system, str):
        raise ComponentRefused("system must be text")
    raw = input.get("messages")
    if not isinstance(raw, list | tuple) or not raw:
        raise ComponentRefused("messages must be a non-empty list of {role, content}")
    if len(raw) > MAX_MESSAGES:
        raise ComponentRefused(f"at most {MAX_MESSAGES} messages")
    messages: list[tuple[str, str]] = []
    for i, message in enumerate(raw):
        role = message.get("role") if isinstance(message, Mapping) else None
        content = message.get("content") if isinstance(message, Mapping) else None
        if role not in ROLES or not isinstance(content, str):
            raise ComponentRefused(
                f"messages[{i}] must be {{role: user|assistant|system, content: text}}"
            )
        messages.append((role, content))
    max_tokens = input.get("maxTokens", settings.max_tokens)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ComponentRefused("maxTokens must be a whole number of at least 1")
    top_p = input.get("topP", settings.top_p)
    return ChatRequest(
        system=system or None,
        messages=tuple(messages),
        model=_model(input, settings.model),
        temperature=_number(input, "temperature", settings.temperature, 0, 2),
        max_tokens=max_tokens,
        top_p=None if top_p is None else _number({"topP": top_p}, "topP", 1, 0, 1),
    )


def embedding_inputs(input: Mapping[str, Any]) -> list[str]:
    value = input.get("input")
    texts = [value] if isinstance(value, str) else value
    if (
        not isinstance(texts, list | tuple)
        or not texts
        or not all(isinstance(t, str) and t for t in texts)
    ):
        raise ComponentRefused("input must be a non-empty text or a non-empty list of them")
    if len(texts) > MAX_INPUTS:
        raise ComponentRefused(f"at most {MAX_INPUTS} texts in one call")
    return list(texts)


def tokens(value: Any) -> int:
    """A token count from an answer: a missing one (servers that do not count) is 0."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Malformed(f"a token count is {type(value).__name__} {value!r}")
    return value


# -- the guard, on the wire --------------------------------------------------------------------


class GuardedTransport(httpx2.BaseTransport):
    """Every request the SDK sends passes :meth:`Guard.route` first (module docstring)."""

    def __init__(self, guard: Guard, inner: httpx2.BaseTransport) -> None:
        self._guard = guard
        self._inner = inner

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        url, host = self._guard.route(str(request.url))
        if host is not None:
            request.url = httpx2.URL(url)
            request.headers["Host"] = host
        # A traced step's request joins its trace (each retry of the SDK a span of its own).
        traceparent = outbound_traceparent()
        if traceparent is not None:
            request.headers["traceparent"] = traceparent
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def http_client(guard: Guard, timeout: float) -> httpx2.Client:
    """The SDK's HTTP client: guarded, no redirects followed, no environment proxies."""
    return httpx2.Client(
        transport=GuardedTransport(guard, httpx2.HTTPTransport(trust_env=False)),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )


# -- the provider ------------------------------------------------------------------------------


class AiProvider(abc.ABC):
    """A provider of kind ``ai``: the operations and their checks are here; a subclass
    supplies its SDK's client and calls (each run in a worker thread) and names its SDK's
    exceptions (:attr:`sdk`)."""

    #: the SDK module (``openai``, ``anthropic``): its exception classes are read from it
    sdk: ClassVar[Any]
    #: why ``embeddings`` is refused (the API serves none), or None
    no_embeddings: ClassVar[str | None] = None

    def __init__(self, settings: AiSettings, env: ProviderEnv) -> None:
        self.settings = settings
        self._env = env
        self._guard = Guard([settings.origin], env)
        self._client: Any = None
        self._lock = trio.Lock()
        self.operations: Mapping[str, Operation] = {
            "chat": self._chat,
            "embeddings": self._embeddings,
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.settings.where}>"

    # -- what a provider supplies ---------------------------------------------------------

    @abc.abstractmethod
    def _make_client(self) -> Any:
        """The SDK's sync client (made at first use, in a worker thread)."""

    @abc.abstractmethod
    def _chat_sync(self, client: Any, request: ChatRequest) -> ChatAnswer:
        """One chat completion; :class:`Malformed` when the answer lacks what it must hold."""

    @abc.abstractmethod
    def _embed_sync(self, client: Any, texts: list[str], model: str) -> Embedded:
        """The vectors of ``texts`` (unless :attr:`no_embeddings` says why there are none)."""

    @abc.abstractmethod
    def _models_sync(self, client: Any) -> list[str]:
        """The models the API lists (the connectivity check)."""

    # -- the operations -------------------------------------------------------------------

    async def _chat(self, input: Mapping[str, Any]) -> dict[str, Any]:
        request = chat_request(input, self.settings)
        client = await self._ready()
        answer = await self._run(lambda: self._chat_sync(client, request))
        return {
            "content": answer.content,
            "model": answer.model,
            "finishReason": answer.finish_reason,
            "tokens": {"input": answer.input_tokens, "output": answer.output_tokens},
            "cost": self.settings.prices.cost(
                answer.input_tokens, answer.output_tokens, request.model, answer.model
            ),
        }

    async def _embeddings(self, input: Mapping[str, Any]) -> dict[str, Any]:
        if self.no_embeddings is not None:
            raise ComponentRefused(self.no_embeddings)
        texts = embedding_inputs(input)
        model = _model(input, self.settings.embedding_model or self.settings.model)
        client = await self._ready()
        got = await self._run(lambda: self._embed_sync(client, texts, model))
        if len(got.vectors) != len(texts):
            raise self._malformed(f"{len(got.vectors)} vectors for {len(texts)} inputs")
        dimensions = {len(v) for v in got.vectors}
        if len(dimensions) != 1:
            raise self._malformed("vectors of different lengths")
        return {
            "vectors": got.vectors,
            "dimensions": dimensions.pop(),
            "model": got.model,
            "tokens": {"input": got.input_tokens, "output": 0},
            "cost": self.settings.prices.cost(got.input_tokens, 0, model, got.model),
        }

    async def check(self) -> str:
        client = await self._ready()
        models = await self._run(lambda: self._models_sync(client))
        model = self.settings.model
        listed = "listed" if model in models else "not listed"
        return (
            f"connected: {self.settings.where} answered with {len(models)} models "
            f"({model} {listed})"
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await self._env.in_thread(client.close)

    # -- the client and its failures ------------------------------------------------------

    async def _ready(self) -> Any:
        await self._guard.check()
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await self._run(self._make_client)
        return self._client

    def _http_client(self) -> httpx2.Client:
        return http_client(self._guard, self.settings.timeout)

    async def _run(self, fn: Callable[[], T]) -> T:
        """``fn`` in a worker thread, its SDK's failures said in our words."""
        try:
            result: T = await self._env.in_thread(fn)
        except ComponentError:
            raise
        except GuardRefused as e:
            raise ComponentRefused(str(e)) from None
        except Malformed as e:
            raise self._malformed(str(e)) from None
        except Exception as e:
            failure = self._failure(e)
            if failure is None:
                raise
            raise failure from None
        return result

    def _scrub(self, text: str) -> str:
        """``text`` on one line, at most :data:`_QUOTED` characters, without the API key."""
        said = one_line(text)
        key = self.settings.api_key.reveal()
        if key:
            said = said.replace(key, "***")
        return said if len(said) <= _QUOTED else said[: _QUOTED - 3] + "..."

    def _malformed(self, what: str) -> ComponentFailed:
        return ComponentFailed(f"{self.settings.where} answered something malformed: {what}")

    def _failure(self, e: Exception) -> ComponentError | None:
        """What one of the SDK's exceptions tells the flow (None: not the SDK's)."""
        sdk, s = self.sdk, self.settings
        if isinstance(e.__cause__, GuardRefused):  # the SDK wrapped the guard's refusal
            return ComponentRefused(str(e.__cause__))
        if isinstance(e, sdk.APITimeoutError):
            return ComponentFailed(
                f"{s.where} did not answer within {s.timeout:g} s (timeoutSeconds; tried "
                f"{s.max_retries + 1} times)"
            )
        if isinstance(e, sdk.APIConnectionError):
            return ComponentFailed(
                f"could not connect to {s.where}: nothing answered (is it running and reachable?)"
            )
        if isinstance(e, sdk.APIResponseValidationError):
            return self._malformed("its answer does not have the documented shape")
        if isinstance(e, sdk.APIStatusError):
            return self._refused(int(e.status_code), e.response)
        if isinstance(e, sdk.APIError | ValueError | TypeError | AttributeError | KeyError):
            # The SDK could not read the answer (not JSON, a missing field).
            return self._malformed(f"its answer could not be read ({type(e).__name__})")
        return None

    def _refused(self, status: int, response: Any) -> ComponentError:
        s = self.settings
        if status == 401:
            return ComponentFailed(f"{s.where} refused the API key (401): check apiKey")
        said = self._error_text(response)
        if status == 429:
            wait = _retry_after(response)
            asked = f"; it asks to wait {wait:g} s" if wait is not None else ""
            return ComponentRateLimited(
                f"{s.where} is rate limiting this key (429), still after {s.max_retries} "
                f"retries{asked}: {said}".rstrip(": "),
                retry_after=wait,
            )
        if status >= 500:
            return ComponentFailed(
                f"{s.where} failed ({status}), still after {s.max_retries} retries: {said}".rstrip(
                    ": "
                )
            )
        if status == 403:
            return ComponentFailed(f"{s.where} denied access (403): {said}".rstrip(": "))
        if status == 404:
            return ComponentFailed(
                f"{s.where} has no such model or endpoint (404): {said}".rstrip(": ")
            )
        return ComponentRefused(f"{s.where} refused the request ({status}): {said}".rstrip(": "))

    def _error_text(self, response: Any) -> str:
        """The provider's own error message (``{"error": {"message"}}`` for OpenAI and its
        kin, ``{"error": {"type", "message"}}`` for Anthropic, ``{"detail"}`` for some
        servers), scrubbed; else the body's start."""
        try:
            text = str(response.text)
        except Exception:
            return ""
        try:
            body = json.loads(text)
        except ValueError:
            return self._scrub(text)
        return self._scrub(_message_of(body) or text)


def _message_of(body: Any) -> str | None:
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            return _message_of(error)
        if isinstance(error, str):
            return error
        for name in ("message", "detail"):
            if isinstance(body.get(name), str):
                return str(body[name])
    return None


def _retry_after(response: Any) -> float | None:
    """The seconds a 429 answer asks to wait (``retry-after-ms`` or ``retry-after`` in
    seconds), or None."""
    headers = getattr(response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue  # an HTTP date: not worth quoting
        if seconds >= 0:
            return round(seconds, 3)
    return None


def finish_reason(value: Any, words: Mapping[str, str] | None = None) -> str:
    """A finish reason in OpenAI's words (``words`` maps the provider's own)."""
    if value is None:
        return "unknown"
    text = str(value)
    return (words or {}).get(text, text)
