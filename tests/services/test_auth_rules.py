"""Identity value rules: the API schema's name pattern and the service agree exactly."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flow8.services.identity import InvalidInput, normalize_email
from flow8.services.identity._rules import BLANK, NON_BLANK, check_name

names = st.text(alphabet=st.sampled_from(BLANK) | st.characters(), max_size=8)


@settings(max_examples=200, deadline=None)
@given(names)
def test_schema_pattern_accepts_exactly_what_the_service_accepts(name: str) -> None:
    pattern_ok = re.search(NON_BLANK, name) is not None
    try:
        check_name("name", name)
        service_ok = True
    except InvalidInput:
        service_ok = len(name.strip(BLANK)) > 200
    assert pattern_ok is service_ok


def test_email_normalization() -> None:
    assert normalize_email("  Ada@Example.COM ") == "ada@example.com"
    for bad in ("ada", "ada@", "@example.com", "ada@localhost", "a b@example.com"):
        with pytest.raises(InvalidInput):
            normalize_email(bad)
