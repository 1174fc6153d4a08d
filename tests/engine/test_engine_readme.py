"""The engine README's picture of the play ledger is drawn from the domain's transition table:
it must name every transition, and no transition the table does not have."""

from __future__ import annotations

import re
from pathlib import Path

from flow8.domain import PlayTransition, transition_sources, transition_targets
from flow8.engine._ledger import PlayLedger

README = Path(__file__).parents[2] / "flow8" / "engine" / "README.md"


def _ledger_picture() -> str:
    text = README.read_text()
    section = text[text.index("## The play ledger") :]
    return section[section.index("```") + 3 : section.index("```", section.index("```") + 3)]


def test_the_readme_picture_names_every_transition_of_the_table() -> None:
    picture = _ledger_picture()
    named = set(re.findall(r"[a-z]+(?:_[a-z]+)*", picture))
    missing = {t.value for t in PlayTransition} - named
    assert not missing, f"the README's ledger picture lacks {sorted(missing)}"
    states = set(re.findall(r"\b[A-Z]{3,}\b", picture))
    drawn = {s.value for t in PlayTransition for s in transition_sources(t) + transition_targets(t)}
    assert states == drawn


def test_the_ledger_has_one_method_per_transition() -> None:
    assert all(callable(getattr(PlayLedger, t.value, None)) for t in PlayTransition)
