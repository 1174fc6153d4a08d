"""FlowService: validation listing every problem, versions, tenancy, listing, deletion."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flow8.domain import FlowValidationError
from flow8.services.flows import FlowNotFound, FlowService
from flow8.store import open_store

FLOW = {
    "name": "greet",
    "flowlets": [{"ref": "hi", "appId": "template", "args": {"text": "hi {{ $prev.args.who }}"}}],
}


@pytest.fixture
async def flows(tmp_path: Path) -> AsyncIterator[FlowService]:
    async with open_store(f"sqlite:///{tmp_path / 'f.db'}", data_dir=tmp_path) as store:
        yield FlowService.over(store)


async def test_create_get_and_render(flows: FlowService) -> None:
    flow = await flows.create("acme", FLOW)
    assert flow.version == 1
    got = await flows.get("acme", flow.id)
    assert got.definition == flow.definition
    assert got.id == flow.id
    assert got.definition.flowlets[0].app_id == "template"


async def test_every_update_is_a_new_immutable_version(flows: FlowService) -> None:
    flow = await flows.create("acme", FLOW)
    changed = {**FLOW, "name": "greet2"}
    v2 = await flows.update("acme", flow.id, changed)
    assert v2.version == 2
    assert (await flows.get("acme", flow.id)).definition.name == "greet2"
    assert (await flows.get("acme", flow.id, version=1)).definition.name == "greet"
    assert [f.version for f in await flows.versions("acme", flow.id)] == [2, 1]


async def test_invalid_flows_list_every_problem_and_store_nothing(flows: FlowService) -> None:
    bad = {"name": "x", "flowlets": [{"ref": "a", "appId": "ghost"}, {"ref": "a", "appId": "set"}]}
    with pytest.raises(FlowValidationError) as info:
        await flows.create("acme", bad)
    paths = {p.path for p in info.value.problems}
    assert {"flowlets[0].appId", "flowlets[1].ref", "flowlets[1].args"} <= paths
    assert (await flows.list("acme"))[1] == 0
    assert flows.validate(FLOW) == []


async def test_flows_are_company_scoped(flows: FlowService) -> None:
    flow = await flows.create("acme", FLOW)
    with pytest.raises(FlowNotFound):
        await flows.get("globex", flow.id)
    with pytest.raises(FlowNotFound):
        await flows.update("globex", flow.id, FLOW)
    assert (await flows.list("globex"))[1] == 0


async def test_list_pages_and_delete(flows: FlowService) -> None:
    ids = [(await flows.create("acme", {**FLOW, "name": f"f{i}"})).id for i in range(3)]
    page, total = await flows.list("acme", page=0, size=2)
    assert total == 3
    assert len(page) == 2
    await flows.delete("acme", ids[0])
    assert (await flows.list("acme"))[1] == 2
    with pytest.raises(FlowNotFound):
        await flows.get("acme", ids[0])
    # Old versions stay readable for plays that pinned them.
    assert (await flows.get("acme", ids[0], version=1)).definition.name == "f0"
    with pytest.raises(FlowNotFound):
        await flows.delete("acme", ids[0])


async def test_list_by_name_prefix_and_group(flows: FlowService) -> None:
    for name, group in [("Orders in", "sales"), ("Orders out", None), ("Refunds", "sales")]:
        await flows.create("acme", {**FLOW, "name": name, "group": group})
    await flows.create("globex", {**FLOW, "name": "Orders elsewhere", "group": "sales"})

    async def names(**query: str) -> list[str]:
        page, total = await flows.list("acme", **query)  # type: ignore[arg-type]
        assert total == len(page)
        return sorted(f.definition.name for f in page)

    assert await names(name_prefix="Orders") == ["Orders in", "Orders out"]
    assert await names(name_prefix="Orders i") == ["Orders in"]
    assert await names(name_prefix="orders") == []  # a prefix of the indexed name: case counts
    assert await names(group="sales") == ["Orders in", "Refunds"]
    assert await names(name_prefix="Ref", group="sales") == ["Refunds"]
    assert await names(group="nobody") == []


async def test_version_times_page_newest_first(flows: FlowService) -> None:
    flow = await flows.create("acme", FLOW)
    for i in range(3):
        await flows.update("acme", flow.id, {**FLOW, "name": f"greet{i}"})
    page, total = await flows.version_times("acme", flow.id, page=0, size=3)
    assert total == 4
    assert [v for v, _ in page] == [4, 3, 2]
    assert page[0][1] >= page[-1][1]
    assert [v for v, _ in (await flows.version_times("acme", flow.id, page=1, size=3))[0]] == [1]
    with pytest.raises(FlowNotFound):
        await flows.version_times("globex", flow.id)


async def test_names_for_a_picker_newest_change_first_and_names_of_by_id(
    flows: FlowService,
) -> None:
    ids = [(await flows.create("acme", {**FLOW, "name": f"f{i}"})).id for i in range(4)]
    await flows.update("acme", ids[0], {**FLOW, "name": "renamed"})  # now the newest change
    await flows.delete("acme", ids[1])
    await flows.create("globex", {**FLOW, "name": "theirs"})

    names, more = await flows.names("acme", limit=2)
    assert names == [(ids[0], "renamed"), (ids[3], "f3")]
    assert more is True  # f2 is left out
    names, more = await flows.names("acme", limit=3)
    assert [n for _, n in names] == ["renamed", "f3", "f2"]
    assert more is False  # the deleted f1 does not count

    # By id: a deleted flow keeps its name (its plays remain); unknown and other companies'
    # ids are absent.
    other = (await flows.names("globex"))[0][0][0]
    assert await flows.names_of("acme", [ids[1], ids[0], "nope", other]) == {
        ids[1]: "f1",
        ids[0]: "renamed",
    }
    assert await flows.names_of("acme", []) == {}
