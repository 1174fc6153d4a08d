"""The batching audit writer: never blocks a request, loses nothing on clean shutdown."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
import trio
from audit_support import MemorySink

from flow8.services.audit import MASK, AuditEntry, AuditLog, mask


async def test_records_are_batched_per_company(autojump_clock: trio.abc.Clock) -> None:
    sink = MemorySink()
    log = AuditLog(sink, batch_size=100)
    async with trio.open_nursery() as nursery:
        await nursery.start(log.serve)
        for i in range(250):
            log.record(AuditEntry("http_request", company_id=f"c{i % 2}", path=f"/{i}"))
        await log.wait_idle()
        nursery.cancel_scope.cancel()
    assert len(sink.docs) == 250
    assert len(sink.batches) <= 6  # 3 batches of <=100, split per company
    assert [d["path"] for d in sink.docs if d["path"].endswith("0")][:2] == ["/0", "/10"]


async def test_a_steady_stream_is_written_in_batches_not_per_request(
    autojump_clock: trio.abc.Clock,
) -> None:
    """One request per millisecond for a second, each commit taking 2 ms: the writer lingers
    before every partial batch, so a commit carries tens of entries, not the few that arrived
    while the previous commit ran."""

    class SlowSink(MemorySink):
        async def write(self, company_id: str | None, docs: Any) -> None:
            await trio.sleep(0.002)
            await super().write(company_id, docs)

    sink = SlowSink()
    log = AuditLog(sink, linger=0.05)
    async with trio.open_nursery() as nursery:
        await nursery.start(log.serve)
        for i in range(1000):
            log.record(AuditEntry("http_request", company_id="c", path=f"/{i}"))
            await trio.sleep(0.001)
        await log.wait_idle()
        nursery.cancel_scope.cancel()
    assert len(sink.docs) == 1000
    assert len(sink.batches) <= 25  # about one per 52 ms; per-commit writing gave ~330


async def test_nothing_lost_on_shutdown_while_a_write_is_in_flight(
    autojump_clock: trio.abc.Clock,
) -> None:
    sink = MemorySink()
    sink.gate = trio.Event()
    log = AuditLog(sink)
    async with trio.open_nursery() as nursery:
        await nursery.start(log.serve)
        for i in range(10):
            log.record(AuditEntry("x", company_id="c", path=f"/{i}"))
        await trio.sleep(1)
        # Shutdown arrives while the writer is blocked inside the sink.
        nursery.cancel_scope.cancel()
        sink.gate.set()
    assert sorted(d["path"] for d in sink.docs) == sorted(f"/{i}" for i in range(10))


async def test_store_failure_retries_without_loss(autojump_clock: trio.abc.Clock) -> None:
    sink = MemorySink()
    sink.fail = 3
    log = AuditLog(sink)
    async with trio.open_nursery() as nursery:
        await nursery.start(log.serve)
        log.record(AuditEntry("a", company_id="c"))
        log.record(AuditEntry("b", company_id=None))
        await log.wait_idle()
        nursery.cancel_scope.cancel()
    assert sorted(d["action"] for d in sink.docs) == ["a", "b"]
    assert log.dropped == 0


def test_record_never_blocks_and_bounds_memory() -> None:
    log = AuditLog(MemorySink(), max_pending=10)
    for i in range(25):
        log.record(AuditEntry(f"a{i}"))
    assert log.pending == 10
    assert log.dropped == 15


def test_secrets_are_masked_in_entries() -> None:
    key = "f8k_ABCDEFGH_" + "x" * 43
    entry = AuditEntry(
        "link_updated",
        company_id="c",
        before={"password": "hunter2", "nested": [{"clientSecret": "s", "ok": 1}]},
        after={"apiKey": "k", "note": f"uses {key}", "Authorization": "Bearer t"},
        path=f"/api/x/{key}",
    )
    doc = entry.to_doc()
    assert doc["before"] == {"password": MASK, "nested": [{"clientSecret": MASK, "ok": 1}]}
    assert doc["after"] == {"apiKey": MASK, "note": f"uses {MASK}", "Authorization": MASK}
    assert key not in str(doc)
    assert "company_id" not in doc  # the tenant scope adds it
    assert mask({"csrfToken": "t", "name": "n"}) == {"csrfToken": MASK, "name": "n"}


def test_every_field_set_is_stored() -> None:
    values: dict[str, Any] = {
        a.name: f"v-{a.name}" for a in attrs.fields(AuditEntry) if a.name not in ("action",)
    }
    values["status"], values["duration_ms"] = 201, 1.5
    values["created_at"] = datetime(2026, 1, 1, tzinfo=UTC)
    doc = AuditEntry("thing_updated", **values).to_doc()
    expected = {k: v for k, v in values.items() if k != "company_id"}
    assert doc == {"action": "thing_updated", **expected}
    bare = AuditEntry("auth_logout").to_doc()
    assert set(bare) == {"action", "created_at"}  # unset fields are left out


def test_kebab_case_secret_names_are_masked() -> None:
    # HTTP header names in a flow's arguments reach the trail with a flow's before/after.
    headers = {"X-Api-Key": "k1", "api-key": "k2", "Private-Key": "k3", "Accept": "a"}
    doc = AuditEntry("flow_created", after={"args": {"headers": headers}}).to_doc()
    masked = {"X-Api-Key": MASK, "api-key": MASK, "Private-Key": MASK, "Accept": "a"}
    assert doc["after"] == {"args": {"headers": masked}}
