"""The audit-cache and ttl-cache jobs on a real sqlite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flow8.domain import parse_flow_definition
from flow8.jobs import cleanup_jobs
from flow8.modules import default_registry
from flow8.services.audit import AuditFilterCache
from flow8.services.flows import FlowRepository
from flow8.services.retention import RetentionPolicies
from flow8.store import Store, open_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'c.db'}", data_dir=tmp_path) as s:
        yield s


async def test_audit_filter_values_are_per_company_and_refreshed_by_the_job(store: Store) -> None:
    now = datetime.now(UTC)
    await store.tenant("acme").collection("audit_logs").insert_many(
        [
            {"action": "flow_created", "target_type": "flow", "user_id": "u1",
             "user_email": "a@acme.test", "created_at": now},
            {"action": "http_request", "method": "GET", "status": 200, "created_at": now},
        ]
    )  # fmt: skip
    await (
        store.tenant("globex")
        .collection("audit_logs")
        .insert_one({"action": "secret_globex_thing", "user_id": "u9", "created_at": now})
    )
    filters = AuditFilterCache(store, page_size=1)  # one entry a page: every page boundary
    jobs = cleanup_jobs(store, RetentionPolicies(store), lambda _e: None, filters)
    assert await jobs.job("audit-cache").run_once() == {"entriesRead": 3, "companies": 2}
    acme = await filters.get("acme")
    assert acme.actions == ("flow_created", "http_request")
    assert acme.users == (("u1", "a@acme.test"),)
    assert (acme.target_types, acme.methods, acme.statuses) == (("flow",), ("GET",), (200,))
    assert (await filters.get("globex")).actions == ("secret_globex_thing",)
    assert (await filters.get("initech")).actions == ()
    stats = jobs.job("audit-cache").stats.to_json()
    assert stats["runs"] == 1
    assert stats["lastRemoved"] == {"entriesRead": 3, "companies": 2}


async def test_ttl_cache_evicts_expired_entries_and_counts_them(store: Store) -> None:
    flows = FlowRepository(store, default_registry(), head_ttl=0.0)
    definition = parse_flow_definition(
        {"name": "f", "flowlets": [{"ref": "a", "appId": "noop", "args": {}}]}
    )
    made = await flows.create("acme", definition)
    await flows.get("acme", made.id)  # remembers which version is the latest
    jobs = cleanup_jobs(
        store, RetentionPolicies(store), lambda _e: None, AuditFilterCache(store),
        (flows.evict_expired,),
    )  # fmt: skip
    ttl = jobs.job("ttl-cache")
    assert await ttl.run_once() == {"entries": 1}
    assert await ttl.run_once() == {"entries": 0}
    assert ttl.stats.to_json()["totalRemoved"] == {"entries": 1}
    assert (await flows.get("acme", made.id)).version == 1  # read again from the store
