"""The stored form of a play: `_id` and `status` in the document, every other field under its
attribute name, and back again without loss; the engine's runtime fields beside them (lease,
approvals, cancel request) are not part of the play that is read back."""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st

from flow8.domain import Play, PlayState, PlayTrace
from flow8.domain._play import Trigger, TriggerKind, WaitReason
from flow8.engine._records import play_doc, play_from_doc

_ids = st.text("abcdef0123456789", min_size=1, max_size=12)
_times = st.floats(min_value=0, max_value=4e9, allow_nan=False)
_hex = st.text("0123456789abcdef", min_size=32, max_size=32)
_traces = st.builds(
    PlayTrace, st.none() | _ids, st.none() | _hex, st.none() | st.sampled_from(["00", "01"])
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3)
    ),
    max_leaves=8,
)
_plays = st.builds(
    Play,
    id=_ids,
    company_id=_ids,
    flow_id=_ids,
    flow_version=st.integers(1, 1000),
    state=st.sampled_from(PlayState),
    input=_json,
    output=_json,
    error=st.none() | st.text(max_size=20),
    trigger=st.builds(Trigger, st.sampled_from(TriggerKind), st.none() | _ids),
    parent_play_id=st.none() | _ids,
    depth=st.integers(0, 10),
    idempotency_key=st.none() | _ids,
    created_at=_times,
    started_at=st.none() | _times,
    finished_at=st.none() | _times,
    wait_reason=st.none() | st.sampled_from(WaitReason),
    wait_ref=st.none() | _ids,
    wake_at=st.none() | _times,
    retry_of=st.none() | _ids,
    resume_from=st.none() | _ids,
    kv_parents=st.lists(_ids, max_size=3).map(tuple),
    trace=st.none() | _traces,
)


@given(_plays)
def test_a_play_survives_its_stored_form(play: Play) -> None:
    doc = play_doc(play)
    assert doc["_id"] == play.id
    assert doc["status"] == play.state.value
    assert "id" not in doc
    assert "state" not in doc
    assert play_from_doc(doc) == play


def test_runtime_fields_beside_a_play_are_not_read_into_it() -> None:
    play = Play(id="p1", company_id="c1", flow_id="f1", flow_version=1, state=PlayState.RUN)
    doc: dict[str, Any] = {
        **play_doc(play),
        "lease_owner": "instance-7",
        "lease_expires_at": 123.0,
        "max_concurrent": 4,
        "cancel_requested": True,
        "approvals": {"approve": {"by": "u1"}},
    }
    assert play_from_doc(doc) == play


def test_a_plays_trace_is_stored_with_what_it_has_and_only_when_it_has_one() -> None:
    play = Play(id="p1", company_id="c1", flow_id="f1", flow_version=1, state=PlayState.RUN)
    assert "trace" not in play_doc(play)
    traced = attrs.evolve(play, trace=PlayTrace("req-1"))
    assert play_doc(traced)["trace"] == {"correlation_id": "req-1"}
    assert play_from_doc(play_doc(traced)).trace == PlayTrace("req-1")
    full = PlayTrace("req-2", "4bf92f3577b34da6a3ce929d0e0e4736", "01")
    doc = play_doc(attrs.evolve(play, trace=full))
    assert doc["trace"] == {
        "correlation_id": "req-2",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "trace_flags": "01",
    }
    assert play_from_doc(doc).trace == full
    # a play as encrypted play data stores it keeps its trace readable (it is no data)
    assert play_doc(attrs.evolve(play, trace=full), encrypt=True)["trace"] == doc["trace"]
