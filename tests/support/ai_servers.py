"""AI APIs on loopback, speaking each documented wire protocol, for the official SDKs.

:class:`FakeAi` is a ``local_http.LocalServer`` handler: every request is kept (method, path,
headers, body) and answered with the next scripted :class:`Reply` when the test queued one,
else with what the real API answers a well-formed request:

* OpenAI (and Mistral, Ollama's ``/v1``, any compatible server): ``POST .../chat/completions``
  (a ``chat.completion``), ``POST .../embeddings`` (one vector per input, in order, as
  floats), ``GET .../models``.
* Anthropic: ``POST /v1/messages`` (a ``message`` with text blocks), ``GET /v1/models``.

A :data:`HANG` reply never answers (a timeout test: the client gives up on its own clock).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from support.local_http import LocalServer, Seen, reply


@attrs.frozen
class Reply:
    status: int = 200
    body: Any = None  # JSON, or bytes sent as they are
    headers: tuple[tuple[str, str], ...] = ()


HANG = Reply(status=0)


def openai_chat(
    content: str | None = "Hello from the model.",
    *,
    model: str = "gpt-4o-2024-08-06",
    input: int = 12,
    output: int = 5,
    finish: str = "stop",
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": input,
            "completion_tokens": output,
            "total_tokens": input + output,
        },
    }


def openai_embeddings(
    vectors: Sequence[Sequence[float]], *, model: str = "text-embedding-3-small", input: int = 8
) -> dict[str, Any]:
    # Listed last-first: a client must order them by index.
    data = [
        {"object": "embedding", "index": i, "embedding": list(v)} for i, v in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": list(reversed(data)),
        "model": model,
        "usage": {"prompt_tokens": input, "total_tokens": input},
    }


def anthropic_message(
    text: str = "Hello from Claude.",
    *,
    model: str = "claude-sonnet-4-5-20250929",
    input: int = 20,
    output: int = 7,
    stop: str = "end_turn",
) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": input, "output_tokens": output},
    }


def models(*ids: str) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": i, "object": "model", "created": 1, "owned_by": "x"} for i in ids],
        # Anthropic's page fields (OpenAI's client ignores them)
        "has_more": False,
        "first_id": ids[0] if ids else None,
        "last_id": ids[-1] if ids else None,
    }


def error(status: int, message: str, **headers: str) -> Reply:
    """An error as both protocols put it (``{"error": {"type", "message"}}``)."""
    return Reply(
        status,
        {"type": "error", "error": {"type": "api_error", "message": message}},
        tuple((k.replace("_", "-"), v) for k, v in headers.items()),
    )


@attrs.define
class FakeAi:
    """The handler (module docstring). ``queue`` replies are used first, in order."""

    queue: list[Reply] = attrs.Factory(list)
    seen: list[Seen] = attrs.Factory(list)

    def then(self, *replies: Reply) -> FakeAi:
        self.queue.extend(replies)
        return self

    def json(self, i: int = -1) -> Any:
        """The JSON body of the ``i``-th request."""
        return json.loads(self.seen[i].body)

    @property
    def paths(self) -> list[str]:
        return [f"{s.method} {s.target}" for s in self.seen]

    async def __call__(self, request: Seen, stream: trio.abc.Stream, server: LocalServer) -> None:
        self.seen.append(request)
        answer = self.queue.pop(0) if self.queue else self.default(request)
        if answer is HANG:
            await trio.sleep_forever()
        body = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
        headers = [("Content-Type", "application/json"), *answer.headers]
        if isinstance(answer.body, bytes):
            headers = list(answer.headers) or [("Content-Type", "application/json")]
        await reply(stream, answer.status, body, headers)

    def default(self, request: Seen) -> Reply:
        path = request.target.split("?")[0]
        if path.endswith("/chat/completions"):
            asked = json.loads(request.body)
            return Reply(body=openai_chat(model=asked.get("model", "gpt-4o")))
        if path.endswith("/embeddings"):
            asked = json.loads(request.body)
            texts = asked["input"] if isinstance(asked["input"], list) else [asked["input"]]
            return Reply(
                body=openai_embeddings(
                    [[float(len(t)), 0.5, -1.0] for t in texts], model=asked["model"]
                )
            )
        if path.endswith("/v1/messages"):
            return Reply(body=anthropic_message(model=json.loads(request.body)["model"]))
        if path.endswith("/models"):
            return Reply(body=models("gpt-4o", "claude-sonnet-4-5", "mistral-small-latest"))
        return error(404, f"no route {path}")
