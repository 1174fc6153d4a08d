"""What a metered step (an AI call) spent: tokens and their cost, recorded on its layer,
summed on its play and counted against the company's and the flow's budgets."""

from __future__ import annotations

import attrs


@attrs.frozen
class AiUsage:
    """One provider call's usage. ``cost`` is in the company's currency, from the
    component's price table (its own entries first, then the built-in public prices);
    0 when neither knows the model."""

    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cost: float
