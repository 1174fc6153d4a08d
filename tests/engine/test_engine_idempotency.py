"""Idempotency keys are stored with the fingerprint of the request that used them: the same
request again answers the same play, a different one is refused (IdempotencyKeyReused)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from engine_testkit import COMPANY, make_flow, running_engine, stallable_store
from support.waits import wait_until

from flow8.domain import Play
from flow8.engine import Engine, IdempotencyKeyReused
from flow8.store import Store

NOOP = {"flowlets": [{"ref": "a", "appId": "noop"}]}


async def test_the_same_request_answers_the_same_play(engine: Engine) -> None:
    flow = await make_flow(engine, NOOP)
    one = await engine.start_play(COMPANY, flow.id, {"a": 1, "b": [1, 2]}, idempotency_key="k")
    # The same JSON written with its keys in another order is the same request.
    two = await engine.start_play(COMPANY, flow.id, {"b": [1, 2], "a": 1}, idempotency_key="k")
    assert two.id == one.id
    _, total = await engine.list_plays(COMPANY, flow_id=flow.id)
    assert total == 1


async def test_a_different_request_with_the_same_key_is_refused(engine: Engine) -> None:
    flow = await make_flow(engine, NOOP)
    one = await engine.start_play(COMPANY, flow.id, {"a": 1}, idempotency_key="k")
    with pytest.raises(IdempotencyKeyReused) as refused:
        await engine.start_play(COMPANY, flow.id, {"a": 2}, idempotency_key="k")
    assert refused.value.play_id == one.id
    assert "'k' was already used with a different request" in str(refused.value)
    with pytest.raises(IdempotencyKeyReused):  # no input is another request too
        await engine.start_play(COMPANY, flow.id, None, idempotency_key="k")
    with pytest.raises(IdempotencyKeyReused):  # and so is a version asked for by number
        await engine.start_play(COMPANY, flow.id, {"a": 1}, idempotency_key="k", version=1)
    _, total = await engine.list_plays(COMPANY, flow_id=flow.id)
    assert total == 1
    # Keys are per flow: the same key on another flow is another request's.
    other = await make_flow(engine, NOOP)
    assert (await engine.start_play(COMPANY, other.id, {"a": 2}, idempotency_key="k")).id != one.id


async def test_a_key_stored_without_a_fingerprint_answers_its_play(engine: Engine) -> None:
    """Plays started before keys had fingerprints keep the old behaviour for their window."""
    flow = await make_flow(engine, NOOP)
    one = await engine.start_play(COMPANY, flow.id, {"a": 1}, idempotency_key="old")
    plays = engine.store.tenant(COMPANY).collection("plays")
    doc = await plays.find_one({"_id": one.id})
    assert doc is not None
    assert len(doc["idempotency_fingerprint"]) == 64  # sha256, hex
    await plays.update_one({"_id": one.id}, {"$unset": {"idempotency_fingerprint": ""}})
    again = await engine.start_play(COMPANY, flow.id, {"a": 2}, idempotency_key="old")
    assert again.id == one.id


async def test_a_key_past_its_window_takes_any_request(store: Store) -> None:
    async with running_engine(store, idempotency_window_seconds=0.2) as engine:
        flow = await make_flow(engine, NOOP)
        one = await engine.start_play(COMPANY, flow.id, {"a": 1}, idempotency_key="k")
        await trio.sleep(0.3)  # (virtual time) past the window
        two = await engine.start_play(COMPANY, flow.id, {"a": 2}, idempotency_key="k")
        assert two.id != one.id
        with pytest.raises(IdempotencyKeyReused):  # the key now stands for the new request
            await engine.start_play(COMPANY, flow.id, {"a": 1}, idempotency_key="k")


@pytest.mark.wall_clock  # stalls sqlite's writer
async def test_two_different_requests_racing_for_a_key_start_one_play(tmp_path: Path) -> None:
    """Both starts look the key up before either play is stored: the second insert meets
    the unique key, and is then compared with the play that won."""
    async with (
        stallable_store(tmp_path) as stallable,
        running_engine(stallable.store) as engine,
    ):
        flow = await make_flow(engine, NOOP)
        await stallable.stall()  # inserts queue up from here, unseen by lookups
        answers: dict[int, Play | IdempotencyKeyReused] = {}

        async def start(n: int) -> None:
            try:
                answers[n] = await engine.start_play(
                    COMPANY, flow.id, {"n": n}, idempotency_key="race"
                )
            except IdempotencyKeyReused as e:
                answers[n] = e

        async with trio.open_nursery() as nursery:
            nursery.start_soon(start, 1)
            nursery.start_soon(start, 2)
            await wait_until(lambda: stallable.queued_writes() == 2, what="both inserts queued")
            stallable.resume()
        plays = [a for a in answers.values() if isinstance(a, Play)]
        refused = [a for a in answers.values() if isinstance(a, IdempotencyKeyReused)]
        assert len(plays) == 1, answers
        assert len(refused) == 1, answers
        assert refused[0].play_id == plays[0].id
        _, total = await engine.list_plays(COMPANY, flow_id=flow.id)
        assert total == 1


async def test_a_subflow_child_is_found_again_whatever_its_args(engine: Engine) -> None:
    """A subflow step re-run after a crash finds its child by the step's key, even if its
    arguments now resolve differently (an expression over the clock): children are not
    compared by fingerprint."""
    flow = await make_flow(engine, NOOP)
    parent = await engine.wait_play(
        COMPANY, (await engine.start_play(COMPANY, flow.id)).id, timeout=10
    )
    key = f"subflow:{parent.id}:a:"
    one = await engine.start_play(COMPANY, flow.id, {"at": 1}, idempotency_key=key, parent=parent)
    two = await engine.start_play(COMPANY, flow.id, {"at": 2}, idempotency_key=key, parent=parent)
    assert two.id == one.id
    assert one.parent_play_id == parent.id
