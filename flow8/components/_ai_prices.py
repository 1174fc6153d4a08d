"""What an AI call costs: the providers' public prices, and the component's own on top.

Prices are per million tokens, input and output apart, in the currency the company counts
in: the built-in table is the providers' published US-dollar list prices for their common
models (as of 2025; a component's ``prices`` entries win, so a company with other terms, a
currency of its own or a model missing here sets its own). A model neither knows costs 0:
a local model (Ollama) costs nothing per token, and an unknown one is not guessed.

A model is found by its exact name first, then by the longest known name it starts with
followed by ``-``: providers answer with dated snapshots (``gpt-4o-2024-08-06``,
``claude-sonnet-4-5-20250929``) and aliases (``mistral-large-latest``) of the names priced
here, while ``gpt-4o-mini`` is still told from ``gpt-4o``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs


@attrs.frozen
class Price:
    """Per million tokens."""

    input: float
    output: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return round((input_tokens * self.input + output_tokens * self.output) / 1_000_000, 10)


FREE = Price(0.0, 0.0)

_OPENAI: Mapping[str, Price] = {
    "gpt-5": Price(1.25, 10.0),
    "gpt-5-mini": Price(0.25, 2.0),
    "gpt-5-nano": Price(0.05, 0.40),
    "gpt-4.1": Price(2.0, 8.0),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4o": Price(2.50, 10.0),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4-turbo": Price(10.0, 30.0),
    "gpt-3.5-turbo": Price(0.50, 1.50),
    "o3": Price(2.0, 8.0),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
    "text-embedding-3-small": Price(0.02, 0.0),
    "text-embedding-3-large": Price(0.13, 0.0),
    "text-embedding-ada-002": Price(0.10, 0.0),
}

_ANTHROPIC: Mapping[str, Price] = {
    "claude-opus-4-5": Price(5.0, 25.0),
    "claude-opus-4-1": Price(15.0, 75.0),
    "claude-opus-4": Price(15.0, 75.0),
    "claude-sonnet-4-5": Price(3.0, 15.0),
    "claude-sonnet-4": Price(3.0, 15.0),
    "claude-3-7-sonnet": Price(3.0, 15.0),
    "claude-3-5-sonnet": Price(3.0, 15.0),
    "claude-haiku-4-5": Price(1.0, 5.0),
    "claude-3-5-haiku": Price(0.80, 4.0),
    "claude-3-haiku": Price(0.25, 1.25),
}

_MISTRAL: Mapping[str, Price] = {
    "mistral-large": Price(2.0, 6.0),
    "mistral-medium": Price(0.40, 2.0),
    "mistral-small": Price(0.10, 0.30),
    "pixtral-large": Price(2.0, 6.0),
    "codestral": Price(0.30, 0.90),
    "open-mistral-nemo": Price(0.15, 0.15),
    "ministral-8b": Price(0.10, 0.10),
    "ministral-3b": Price(0.04, 0.04),
    "mistral-embed": Price(0.10, 0.0),
}

BUILT_IN: Mapping[str, Mapping[str, Price]] = {
    "openai": _OPENAI,
    "anthropic": _ANTHROPIC,
    "mistral": _MISTRAL,
}
"""provider -> model -> price. Ollama and OpenAI-compatible servers have no public list:
their models cost what the component's ``prices`` say, else 0."""


def own_prices(config: Any) -> dict[str, Price]:
    """A component's ``prices`` as :class:`Price` entries: ``{model: {inputPerMillion,
    outputPerMillion}}``, or a list of ``{model, inputPerMillion, outputPerMillion}`` (model
    names with a dot, ``gpt-4.1``, cannot be field names in the store), both checked by
    the config schema."""
    entries: list[Mapping[str, Any]]
    if isinstance(config, Mapping):
        entries = [{**p, "model": model} for model, p in config.items() if isinstance(p, Mapping)]
    elif isinstance(config, list):
        entries = [p for p in config if isinstance(p, Mapping)]
    else:
        return {}
    return {
        str(p["model"]): Price(
            float(p.get("inputPerMillion", 0)), float(p.get("outputPerMillion", 0))
        )
        for p in entries
        if p.get("model")
    }


@attrs.frozen
class PriceTable:
    """One component's prices: its own entries, then its provider's built-in ones."""

    provider: str
    own: Mapping[str, Price] = attrs.field(factory=dict)

    def price(self, *models: str) -> Price:
        """The price of the first of ``models`` (the model asked for, the one that
        answered) that either table names exactly, the component's own first; else the
        longest name one of them starts with (the component's own on a tie)."""
        tables = (self.own, BUILT_IN.get(self.provider, {}))
        for table in tables:
            for model in models:
                if model in table:
                    return table[model]
        best: tuple[int, Price] | None = None
        for table in tables:
            for model in models:
                for name in table:
                    if model.startswith(f"{name}-") and (best is None or len(name) > best[0]):
                        best = (len(name), table[name])
        return best[1] if best is not None else FREE

    def cost(self, input_tokens: int, output_tokens: int, *models: str) -> float:
        return self.price(*models).cost(input_tokens, output_tokens)
