"""A flow's createdAt is its first version's time, whichever version is read; updatedAt is
the time of the version read (FlowRepository over a real sqlite store)."""

from __future__ import annotations

import trio

from flow8.domain import Flow, FlowDefinition, parse_flow_definition
from flow8.engine import Engine
from flow8.services.flows import FlowRepository
from flow8.store import Store

COMPANY = "acme"


def _definition(name: str) -> FlowDefinition:
    return parse_flow_definition(
        {"name": name, "flowlets": [{"ref": "a", "appId": "set", "args": {"value": 1}}]}
    )


async def _three_versions(engine: Engine) -> list[Flow]:
    """Version 1, 2 and 3 of one flow, each written a little after the one before."""
    made = [await engine.flows.create(COMPANY, _definition("v1"))]
    for name in ("v2", "v3"):
        await trio.sleep(0.01)  # so each version's time is distinct, whatever the clock's grain
        made.append(await engine.flows.update(COMPANY, made[0].id, _definition(name)))
    return made


def _fresh(engine: Engine, store: Store) -> FlowRepository:
    """A repository with nothing cached: what it answers comes from the store."""
    return FlowRepository(store, engine.registry)


async def test_created_at_stays_the_first_versions_time(engine: Engine, store: Store) -> None:
    v1, v2, v3 = await _three_versions(engine)
    created = v1.created_at
    assert v1.updated_at == created
    # What update returned, then what a repository reads back (latest, each version, lists).
    assert [v.created_at for v in (v2, v3)] == [created, created]
    assert v1.updated_at < v2.updated_at < v3.updated_at
    for repo in (engine.flows, _fresh(engine, store)):
        latest = await repo.get(COMPANY, v1.id)
        assert (latest.version, latest.created_at, latest.updated_at) == (
            3,
            created,
            v3.updated_at,
        )
        pinned = [await repo.get(COMPANY, v1.id, version=n) for n in (1, 2, 3)]
        assert [f.created_at for f in pinned] == [created] * 3
        assert [f.updated_at for f in pinned] == [v1.updated_at, v2.updated_at, v3.updated_at]
        versions = await repo.versions(COMPANY, v1.id)
        assert [(f.version, f.created_at) for f in versions] == [
            (3, created),
            (2, created),
            (1, created),
        ]
        assert [f.updated_at for f in versions] == [v3.updated_at, v2.updated_at, v1.updated_at]
        listed, _ = await repo.list_flows(COMPANY)
        assert [(f.created_at, f.updated_at) for f in listed] == [(created, v3.updated_at)]


async def test_restoring_a_version_keeps_created_at(engine: Engine, store: Store) -> None:
    v1, _, v3 = await _three_versions(engine)
    await trio.sleep(0.01)
    old = await engine.flows.get(COMPANY, v1.id, version=1)
    restored = await engine.flows.update(COMPANY, v1.id, old.definition)
    assert restored.version == 4
    assert restored.definition.name == "v1"
    assert restored.created_at == v1.created_at
    assert restored.updated_at > v3.updated_at
    latest = await _fresh(engine, store).get(COMPANY, v1.id)
    assert (latest.created_at, latest.updated_at) == (v1.created_at, restored.updated_at)


async def test_versions_stored_without_the_flows_creation_read_it_from_the_flow(
    engine: Engine, store: Store
) -> None:
    """Version documents written before they carried `flow_created_at`: the flow's own
    document says when it was created, and the next version carries it again."""
    v1, _, v3 = await _three_versions(engine)
    versions = store.tenant(COMPANY).collection("flow_versions")
    res = await versions.update_many({"flow_id": v1.id}, {"$unset": {"flow_created_at": ""}})
    assert res.modified_count == 3
    repo = _fresh(engine, store)
    assert (await repo.get(COMPANY, v1.id)).created_at == v1.created_at
    assert (await repo.get(COMPANY, v1.id, version=2)).created_at == v1.created_at
    assert {f.created_at for f in await repo.versions(COMPANY, v1.id)} == {v1.created_at}
    v4 = await repo.update(COMPANY, v1.id, v3.definition)
    assert v4.created_at == v1.created_at
    stored = await versions.find_one({"flow_id": v1.id, "version": 4})
    assert stored is not None
    assert stored["flow_created_at"] == v1.created_at
