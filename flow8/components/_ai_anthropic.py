"""``ai/anthropic``: Anthropic's Messages API (``POST /v1/messages``, ``GET /v1/models``)
through the official ``anthropic`` SDK's sync client (the ``ai`` extra).

Sampling settings go only where the SDK still takes them: the Messages API of the SDK's
version (``anthropic-version`` 2026-10-21 in SDK 2.x) has no ``temperature`` or ``top_p``,
which older versions send; the component's settings apply where the API has them.

Anthropic takes the system prompt apart from the messages, so ``system`` and any message of
role ``system`` are joined into it, in order. Its stop reasons are said in OpenAI's words
(``end_turn`` -> ``stop``, ``max_tokens`` -> ``length``, ``refusal`` -> ``content_filter``) so
a flow reads one vocabulary whatever the provider. Anthropic serves no embeddings: the
``embeddings`` operation is refused, naming the providers that do.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import Any, ClassVar

import anthropic

from ._ai import (
    AiProvider,
    ChatAnswer,
    ChatRequest,
    Embedded,
    Malformed,
    finish_reason,
    settings_of,
    tokens,
)
from ._provider import ProviderEnv

_STOP_WORDS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "refusal": "content_filter",
}


class AnthropicProvider(AiProvider):
    sdk: ClassVar[Any] = anthropic
    no_embeddings: ClassVar[str | None] = (
        "Anthropic serves no embeddings: name an ai component of another provider (openai, "
        "mistral, ollama, openai-compatible) in this step's componentConfigIds"
    )

    #: the request fields this SDK's ``messages.create`` takes (read with the client)
    _accepted: frozenset[str] = frozenset()

    def _make_client(self) -> anthropic.Anthropic:
        s = self.settings
        client = anthropic.Anthropic(
            api_key=s.api_key.reveal(),
            base_url=s.base_url,
            timeout=s.timeout,
            max_retries=s.max_retries,
            http_client=self._http_client(),
            default_headers=_without_environment_headers(),
        )
        self._accepted = frozenset(inspect.signature(client.messages.create).parameters)
        return client

    def _chat_sync(self, client: Any, request: ChatRequest) -> ChatAnswer:
        system = [request.system] if request.system else []
        system += [content for role, content in request.messages if role == "system"]
        options: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": [
                {"role": role, "content": content}
                for role, content in request.messages
                if role != "system"
            ],
            "stream": False,
        }
        if system:
            options["system"] = "\n\n".join(system)
        if "temperature" in self._accepted:
            options["temperature"] = min(request.temperature, 1.0)  # Anthropic's range: 0-1
        if request.top_p is not None and "top_p" in self._accepted:
            options["top_p"] = request.top_p
        message = client.messages.create(**options)
        blocks = getattr(message, "content", None)
        if not isinstance(blocks, list):
            raise Malformed("no content blocks")
        parts: list[str] = []
        for block in blocks:
            if getattr(block, "type", None) == "text":
                text = getattr(block, "text", None)
                if not isinstance(text, str):
                    raise Malformed("a text block without text")
                parts.append(text)
        model = getattr(message, "model", None)
        if not isinstance(model, str):
            raise Malformed("no model")
        usage = getattr(message, "usage", None)
        return ChatAnswer(
            content="".join(parts),
            model=model or request.model,
            finish_reason=finish_reason(getattr(message, "stop_reason", None), _STOP_WORDS),
            input_tokens=tokens(getattr(usage, "input_tokens", None)),
            output_tokens=tokens(getattr(usage, "output_tokens", None)),
        )

    def _embed_sync(self, client: Any, texts: list[str], model: str) -> Embedded:
        raise AssertionError("refused before any call (no_embeddings)")

    def _models_sync(self, client: Any) -> list[str]:
        page = client.models.list()
        data = getattr(page, "data", None)
        if not isinstance(data, list):
            raise Malformed("no model list")
        return [str(getattr(m, "id", "")) for m in data]


def _without_environment_headers() -> dict[str, Any]:
    """The SDK adds the headers of the server's ``ANTHROPIC_CUSTOM_HEADERS`` to every
    request: a tenant's request (to a host the tenant may choose) must carry none of the
    operator's, so each is omitted."""
    names = [
        line.split(":", 1)[0].strip()
        for line in os.environ.get("ANTHROPIC_CUSTOM_HEADERS", "").split("\n")
        if ":" in line
    ]
    return {name: anthropic.Omit() for name in names if name}


def open_anthropic(config: Mapping[str, Any], env: ProviderEnv) -> AnthropicProvider:
    settings = settings_of(
        "anthropic", config, base_url="https://api.anthropic.com", key_required=True
    )
    return AnthropicProvider(settings, env)
