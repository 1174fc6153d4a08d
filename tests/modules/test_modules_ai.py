"""The AI modules run directly against a scripted ``ai`` component: the requests they make
of it, the outputs they build, the usage they record (once per provider call), and the one
repair of an answer that must have a shape. The providers themselves, on the wire, are
tested in tests/components/test_components_ai.py."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
import pytest

from flow8.components import ComponentHandle, Operation
from flow8.domain import AiUsage
from flow8.modules import InvalidArgs, ModuleFailure, default_registry

REGISTRY = default_registry()
AI_MODULES = ["chat", "embeddings", "structured-extract", "classify", "summarize", "translate"]


@attrs.define
class ScriptedAi:
    """An ``ai`` provider answering each chat with the next of ``answers`` (text), and
    keeping every request."""

    answers: list[str] = attrs.Factory(list)
    requests: list[tuple[str, dict[str, Any]]] = attrs.Factory(list)

    @property
    def operations(self) -> Mapping[str, Operation]:
        return {"chat": self._chat, "embeddings": self._embeddings}

    async def _chat(self, input: Mapping[str, Any]) -> dict[str, Any]:
        self.requests.append(("chat", dict(input)))
        return {
            "content": self.answers.pop(0),
            "model": "model-7",
            "finishReason": "stop",
            "tokens": {"input": 10, "output": 3},
            "cost": 0.25,
        }

    async def _embeddings(self, input: Mapping[str, Any]) -> dict[str, Any]:
        self.requests.append(("embeddings", dict(input)))
        texts = input["input"] if isinstance(input["input"], list) else [input["input"]]
        return {
            "vectors": [[1.0, 2.0] for _ in texts],
            "dimensions": 2,
            "model": "embed-1",
            "tokens": {"input": 4, "output": 0},
            "cost": 0.01,
        }

    async def check(self) -> str:
        return "scripted"

    async def aclose(self) -> None:
        return None


@attrs.define
class Ctx:
    """What an AI module uses of ``ModuleContext``: its ``ai`` component and
    ``record_usage``."""

    ai: ScriptedAi
    usage: list[AiUsage] = attrs.Factory(list)
    asked: list[str] = attrs.Factory(list)

    async def component(self, kind: str) -> ComponentHandle:
        self.asked.append(kind)
        return ComponentHandle(kind, "openai", "ai-1", self.ai)

    def record_usage(self, usage: AiUsage) -> None:
        self.usage.append(usage)


async def run(app_id: str, args: dict[str, Any], *answers: str) -> tuple[Any, Ctx]:
    spec = REGISTRY.get(app_id)
    spec.check_args(args)
    ctx = Ctx(ScriptedAi(list(answers)))
    out = await spec.run(ctx, args)  # type: ignore[arg-type]
    assert ctx.asked == ["ai"] * len(ctx.asked)
    return out, ctx


def one_call(cost: float = 0.25) -> list[AiUsage]:
    return [AiUsage("openai", "model-7", 10, 3, cost)]


@pytest.mark.parametrize("app_id", AI_MODULES)
def test_every_ai_module_is_metered_not_idempotent_and_needs_an_ai_component(app_id: str) -> None:
    spec = REGISTRY.get(app_id)
    assert spec.metered is True
    assert spec.idempotent is False
    assert spec.components == ("ai",)
    assert spec.category == "ai"
    assert spec.example is not None
    assert spec.arg_problems(dict(spec.example), static=True) == []


async def test_chat_sends_the_system_prompt_history_and_message_and_records_its_usage() -> None:
    args = {
        "systemPrompt": "Be brief.",
        "userMessage": "And now?",
        "history": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
        ],
        "model": "gpt-4o-mini",
        "temperature": 0,
        "maxTokens": 50,
    }
    out, ctx = await run("chat", args, "Now this.")
    assert ctx.ai.requests == [
        (
            "chat",
            {
                "system": "Be brief.",
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello"},
                    {"role": "user", "content": "And now?"},
                ],
                "model": "gpt-4o-mini",
                "temperature": 0,
                "maxTokens": 50,
            },
        )
    ]
    assert out == {
        "response": "Now this.",
        "tokens": {"input": 10, "output": 3},
        "model": "model-7",
        "finishReason": "stop",
    }
    assert ctx.usage == one_call()


async def test_chat_leaves_the_settings_to_the_component_unless_given() -> None:
    _, ctx = await run("chat", {"userMessage": "Hi"}, "Hello")
    assert ctx.ai.requests == [("chat", {"messages": [{"role": "user", "content": "Hi"}]})]


async def test_an_answer_is_data_whatever_it_holds() -> None:
    out, _ = await run("chat", {"userMessage": "x"}, "{{ $flowId }} $eval('1')")
    assert out["response"] == "{{ $flowId }} $eval('1')"


@pytest.mark.parametrize(("given", "sent"), [("one text", "one text"), (["a", "b"], ["a", "b"])])
async def test_embeddings_answer_vectors_and_record_usage(given: Any, sent: Any) -> None:
    out, ctx = await run("embeddings", {"input": given, "model": "text-embedding-3-large"})
    assert ctx.ai.requests == [("embeddings", {"input": sent, "model": "text-embedding-3-large"})]
    count = 1 if isinstance(given, str) else len(given)
    assert out == {
        "vectors": [[1.0, 2.0]] * count,
        "dimensions": 2,
        "tokens": {"input": 4, "output": 0},
        "model": "embed-1",
    }
    assert ctx.usage == [AiUsage("openai", "embed-1", 4, 0, 0.01)]


SCHEMA = {
    "type": "object",
    "properties": {"orderId": {"type": "string"}, "total": {"type": "number"}},
    "required": ["orderId", "total"],
    "additionalProperties": False,
}
EXTRACT = {"input": {"email": "Order A-1, 12 EUR"}, "prompt": "Find the order.", "schema": SCHEMA}


@pytest.mark.parametrize(
    "answer",
    [
        '{"orderId": "A-1", "total": 12}',
        '```json\n{"orderId": "A-1", "total": 12}\n```',
        'Here it is: {"orderId": "A-1", "total": 12} Hope this helps.',
    ],
)
async def test_structured_extract_answers_the_data_valid_against_the_schema(answer: str) -> None:
    out, ctx = await run("structured-extract", EXTRACT, answer)
    assert out == {"data": {"orderId": "A-1", "total": 12}, "tokens": {"input": 10, "output": 3}}
    ((_, request),) = ctx.ai.requests
    assert json.dumps(SCHEMA) in request["system"]
    assert request["temperature"] == 0
    assert request["messages"][0]["content"].startswith("Find the order.\n\nInput:\n")
    assert '"email": "Order A-1, 12 EUR"' in request["messages"][0]["content"]
    assert ctx.usage == one_call()


async def test_structured_extract_repairs_once_showing_the_model_what_was_wrong() -> None:
    wrong = '{"orderId": "A-1"}'
    out, ctx = await run("structured-extract", EXTRACT, wrong, '{"orderId": "A-1", "total": 12}')
    assert out == {"data": {"orderId": "A-1", "total": 12}, "tokens": {"input": 20, "output": 6}}
    first, second = (r for _, r in ctx.ai.requests)
    assert second["messages"][:2] == [
        first["messages"][0],
        {"role": "assistant", "content": wrong},
    ]
    repair = second["messages"][2]
    assert repair["role"] == "user"
    assert "not valid" in repair["content"]
    assert "total" in repair["content"]  # the validation error, sent back
    assert ctx.usage == one_call() * 2  # each call reported


async def test_structured_extract_fails_clearly_after_one_repair() -> None:
    with pytest.raises(ModuleFailure) as caught:
        await run("structured-extract", EXTRACT, "no idea", '{"orderId": 7, "total": 1}')
    text = str(caught.value)
    assert "does not match the schema, even after one repair" in text
    assert "orderId" in text


async def test_structured_extract_records_what_it_spent_even_when_it_fails() -> None:
    spec = REGISTRY.get("structured-extract")
    ctx = Ctx(ScriptedAi(["nope", "still nope"]))
    with pytest.raises(ModuleFailure, match="not JSON"):
        await spec.run(ctx, EXTRACT)  # type: ignore[arg-type]
    assert ctx.usage == one_call() * 2


def test_structured_extract_refuses_a_schema_that_is_not_one_when_saved() -> None:
    spec = REGISTRY.get("structured-extract")
    problems = spec.arg_problems({**EXTRACT, "schema": {"type": "thing"}}, static=True)
    assert problems
    assert problems[0][0] == "schema"
    assert "not a valid JSON Schema" in problems[0][1]


async def test_structured_extract_fails_on_a_resolved_schema_that_is_not_one() -> None:
    with pytest.raises(ModuleFailure, match="not a valid JSON Schema"):
        await run("structured-extract", {**EXTRACT, "schema": {"type": 5}})


LABELS = ["billing", "bug", "feature request"]


@pytest.mark.parametrize("answer", ["bug", " Bug.", '"bug"', "BUG"])
async def test_classify_answers_one_of_the_labels_exactly(answer: str) -> None:
    out, ctx = await run("classify", {"input": "It crashes", "labels": LABELS}, answer)
    assert out == {"label": "bug", "tokens": {"input": 10, "output": 3}}
    ((_, request),) = ctx.ai.requests
    assert json.dumps(LABELS) in request["system"]
    assert request["messages"] == [{"role": "user", "content": "It crashes"}]


async def test_classify_repairs_once_then_fails_naming_the_labels() -> None:
    out, ctx = await run("classify", {"input": "x", "labels": LABELS}, "a bug, I think", "bug")
    assert out["label"] == "bug"
    assert len(ctx.usage) == 2
    with pytest.raises(ModuleFailure) as caught:
        await run("classify", {"input": "x", "labels": LABELS}, "maybe", "perhaps a bug")
    assert "'perhaps a bug', which is none of the labels, even after one repair" in str(
        caught.value
    )


def test_classify_needs_two_labels_at_least() -> None:
    with pytest.raises(InvalidArgs, match="labels"):
        REGISTRY.get("classify").check_args({"input": "x", "labels": ["only"]})


async def test_summarize_and_translate_say_what_they_want_and_answer_text() -> None:
    out, ctx = await run("summarize", {"input": "A long text.", "maxWords": 12}, " Short. ")
    assert out == {"summary": "Short.", "tokens": {"input": 10, "output": 3}}
    assert "at most 12 words" in ctx.ai.requests[0][1]["system"]
    assert ctx.usage == one_call()
    args = {"input": "Hello", "targetLanguage": "German", "sourceLanguage": "English"}
    out, ctx = await run("translate", args, "Hallo")
    assert out == {"translation": "Hallo", "tokens": {"input": 10, "output": 3}}
    assert "from English into German" in ctx.ai.requests[0][1]["system"]
    assert ctx.ai.requests[0][1]["messages"] == [{"role": "user", "content": "Hello"}]


def test_ai_args_are_checked_by_their_schemas() -> None:
    with pytest.raises(InvalidArgs, match="temperature"):
        REGISTRY.get("chat").check_args({"userMessage": "x", "temperature": 3})
    with pytest.raises(InvalidArgs, match="role"):
        REGISTRY.get("chat").check_args(
            {"userMessage": "x", "history": [{"role": "system", "content": "x"}]}
        )
    with pytest.raises(InvalidArgs, match="input"):
        REGISTRY.get("embeddings").check_args({"input": []})
