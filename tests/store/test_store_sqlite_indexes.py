"""What the sqlite file holds of the catalog's indexes: every index costs every write of its
collection, so the file keeps exactly the ones the catalog declares."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_kit import TEST_CATALOG, backend_of, open_test_store

from flow8.store import Catalog, CollectionSpec, DuplicateKey


async def test_an_index_the_catalog_no_longer_declares_is_dropped_at_start_up(
    tmp_path: Path,
) -> None:
    """Every index costs every write, so one that was retired must not linger in the file:
    reopened under a catalog without it, the duplicates it refused are accepted."""
    async with open_test_store("sqlite", tmp_path) as s:
        await s.tenant("acme").collection("things").insert_one({"k": "taken"})
    things = TEST_CATALOG.specs["things"]
    unique_k = [ix for ix in things.indexes if ix.fields == ("company_id", "k")]
    assert [ix.unique for ix in unique_k] == [True]
    retired = CollectionSpec(
        "things", "tenant", tuple(ix for ix in things.indexes if ix not in unique_k)
    )
    others = [spec for spec in TEST_CATALOG if spec.name != "things"]
    async with open_test_store("sqlite", tmp_path, catalog=Catalog.of([*others, retired])) as s:
        coll = s.tenant("acme").collection("things")
        await coll.insert_one({"k": "taken"})
        assert await coll.count({"k": "taken"}) == 2
        names = {
            r[0]
            for r in backend_of(s)._writer.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'c_things'"
            )
        }
        assert not any("company_id_1_k_1" in n for n in names), names


async def test_a_layer_is_kept_unique_by_its_id_without_an_index_of_its_own(
    tmp_path: Path,
) -> None:
    async with open_test_store("sqlite", tmp_path) as s:
        layers = s.tenant("acme").collection("play_layers")
        layer = {"_id": "p1:step", "play_id": "p1", "layer_id": "step", "seq": 1}
        await layers.insert_one(layer)
        with pytest.raises(DuplicateKey):
            await layers.insert_one({**layer, "seq": 2})
        assert [d["seq"] for d in await layers.find({"play_id": "p1"})] == [1]
