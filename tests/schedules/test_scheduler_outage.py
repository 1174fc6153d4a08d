"""The scheduler rides out a database it cannot write for a while (another process holds
sqlite's write lock past the busy timeout, as a MongoDB election would refuse writes): the
ticks due meanwhile fire late once it is back, each exactly once, none lost."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
import trio
from schedules_kit import COMPANY, body, schedule_kit, scheduled, sleep_until_second
from structlog.testing import capture_logs
from support.sqlite_lock import write_lock_held

from flow8.store import open_store

pytestmark = pytest.mark.wall_clock


def _instant(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


async def test_ticks_due_while_the_database_is_locked_fire_late_once_each(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    url = f"sqlite:///{path}"
    async with (
        open_store(url, data_dir=tmp_path, durability="normal", busy_timeout=0.1) as store,
        schedule_kit(store) as kit,
    ):
        with capture_logs() as logs:
            await kit.start_scheduler()
            await sleep_until_second(0.5)
            await kit.schedules.create(COMPANY, kit.flow_id, body())
            await trio.sleep(2)
            async with write_lock_held(path):
                await trio.sleep(2)  # two ticks are due meanwhile
            await trio.sleep(4)  # the pause (up to 3 s) and the late ticks
            kit.stop_schedulers()
        ticks = [_instant(t) for t in scheduled(await kit.plays_of_flow())]
    # One play per second, none missed or doubled across the outage.
    assert len(ticks) >= 6
    assert ticks == [ticks[0] + timedelta(seconds=i) for i in range(len(ticks))]
    outage = [e["event"] for e in logs if e["event"].startswith("scheduler.store_")]
    assert outage == ["scheduler.store_unavailable", "scheduler.store_back"]
