"""``ai/openai``, ``ai/mistral``, ``ai/ollama`` and ``ai/openai-compatible``: every API that
speaks OpenAI's protocol (``POST /chat/completions``, ``POST /embeddings``, ``GET /models``
under the base URL), through the official ``openai`` SDK's sync client (the ``ai`` extra).

They differ only in their defaults: the base URL (OpenAI's, Mistral's, a local Ollama's
``/v1``; an OpenAI-compatible server has none, ``baseUrl`` is required), whether an API key
is required (Ollama and a compatible server may want none: the SDK then sends a placeholder),
the embeddings model, and the field that bounds an answer's length (OpenAI's current
``max_completion_tokens``, which its reasoning models require; ``max_tokens`` elsewhere).

The SDK's typed answers are built without validation, so every field this reads is checked
(``_read``): an answer without choices, or whose content is not text, is *malformed*, said
as such rather than failing later on a missing attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import openai

from ._ai import (
    AiProvider,
    AiSettings,
    ChatAnswer,
    ChatRequest,
    Embedded,
    Malformed,
    finish_reason,
    settings_of,
    tokens,
)
from ._provider import ProviderEnv


def _read(what: str, fn: Callable[[], Any], *types: type) -> Any:
    """``fn()`` (a field of the answer), or :class:`Malformed` naming ``what`` when it is
    missing or not of ``types``."""
    try:
        value = fn()
    except (AttributeError, TypeError, IndexError, KeyError):
        raise Malformed(f"no {what}") from None
    if types and not isinstance(value, types):
        raise Malformed(f"{what} is {type(value).__name__}, not {types[0].__name__}")
    return value


class OpenAiProvider(AiProvider):
    sdk: ClassVar[Any] = openai
    #: the request field that bounds the answer's length
    max_tokens_field: ClassVar[str] = "max_tokens"

    def _make_client(self) -> openai.OpenAI:
        s = self.settings
        client = openai.OpenAI(
            api_key=s.api_key.reveal(),
            base_url=s.base_url,
            timeout=s.timeout,
            max_retries=s.max_retries,
            http_client=self._http_client(),
        )
        # The SDK reads an organization and a project from the server's environment when
        # none is given: a tenant's key must never carry the operator's.
        for name in ("organization", "project"):
            if getattr(client, name, None) is not None:
                setattr(client, name, None)
        return client

    def _chat_sync(self, client: Any, request: ChatRequest) -> ChatAnswer:
        messages: list[dict[str, str]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages += [{"role": role, "content": content} for role, content in request.messages]
        options: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "temperature": request.temperature,
            self.max_tokens_field: request.max_tokens,
            "stream": False,
        }
        if request.top_p is not None:
            options["top_p"] = request.top_p
        completion = client.chat.completions.create(**options)
        choice = _read("choices", lambda: completion.choices[0])
        content = _read("message", lambda: choice.message.content, str, type(None))
        refusal = getattr(choice.message, "refusal", None)
        reason = finish_reason(getattr(choice, "finish_reason", None))
        if content is None and isinstance(refusal, str):
            content, reason = refusal, "content_filter"
        usage = getattr(completion, "usage", None)
        return ChatAnswer(
            content=content or "",
            model=_read("model", lambda: completion.model, str) or request.model,
            finish_reason=reason,
            input_tokens=tokens(getattr(usage, "prompt_tokens", None)),
            output_tokens=tokens(getattr(usage, "completion_tokens", None)),
        )

    def _embed_sync(self, client: Any, texts: list[str], model: str) -> Embedded:
        # Floats asked for: the SDK would ask for base64, which not every server speaks.
        answer = client.embeddings.create(model=model, input=texts, encoding_format="float")
        data = _read("data", lambda: answer.data, list)
        ordered = sorted(data, key=lambda d: _read("index", lambda: d.index, int))
        vectors: list[list[float]] = []
        for item in ordered:
            vector = _read("embedding", lambda: item.embedding, list)  # noqa: B023
            if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in vector):
                raise Malformed("an embedding holds something other than numbers")
            vectors.append([float(x) for x in vector])
        usage = getattr(answer, "usage", None)
        return Embedded(
            vectors=vectors,
            model=_read("model", lambda: answer.model, str) or model,
            input_tokens=tokens(getattr(usage, "prompt_tokens", None)),
        )

    def _models_sync(self, client: Any) -> list[str]:
        page = client.models.list()
        data = _read("data", lambda: page.data, list)
        return [str(_read("model id", lambda: m.id, str)) for m in data]  # noqa: B023


class OpenAiOfficial(OpenAiProvider):
    max_tokens_field: ClassVar[str] = "max_completion_tokens"


def _open(
    cls: type[OpenAiProvider],
    provider: str,
    config: Mapping[str, Any],
    env: ProviderEnv,
    **defaults: Any,
) -> OpenAiProvider:
    settings: AiSettings = settings_of(provider, config, **defaults)
    return cls(settings, env)


def open_openai(config: Mapping[str, Any], env: ProviderEnv) -> OpenAiProvider:
    return _open(
        OpenAiOfficial,
        "openai",
        config,
        env,
        base_url="https://api.openai.com/v1",
        key_required=True,
        embedding_model="text-embedding-3-small",
    )


def open_mistral(config: Mapping[str, Any], env: ProviderEnv) -> OpenAiProvider:
    return _open(
        OpenAiProvider,
        "mistral",
        config,
        env,
        base_url="https://api.mistral.ai/v1",
        key_required=True,
        embedding_model="mistral-embed",
    )


def open_ollama(config: Mapping[str, Any], env: ProviderEnv) -> OpenAiProvider:
    return _open(
        OpenAiProvider,
        "ollama",
        config,
        env,
        base_url="http://localhost:11434/v1",
        key_required=False,
        placeholder_key="ollama",  # what Ollama's own documentation sends
    )


def open_compatible(config: Mapping[str, Any], env: ProviderEnv) -> OpenAiProvider:
    return _open(
        OpenAiProvider, "openai-compatible", config, env, base_url=None, key_required=False
    )
