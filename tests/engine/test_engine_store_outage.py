"""The dispatcher rides out a database it cannot write for a while, as during a MongoDB
election: here another process holds sqlite's write lock past the busy timeout, so every
claim the dispatcher tries is refused with ``DatabaseLocked`` (a ``StoreUnavailable``). The
engine must still be there when the database comes back, and run the plays started then."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from engine_testkit import make_flow, run, running_engine
from structlog.testing import capture_logs
from support.sqlite_lock import write_lock_held
from support.waits import wait_until

from flow8.domain import PlayState
from flow8.store import open_store

pytestmark = pytest.mark.wall_clock


async def test_the_dispatcher_rides_out_a_locked_database_and_runs_plays_after(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f.db"
    url = f"sqlite:///{path}"
    async with open_store(url, data_dir=tmp_path, durability="normal", busy_timeout=0.1) as store:
        with capture_logs() as logs:
            async with running_engine(store, poll_interval=0.05) as engine:
                flow = await make_flow(
                    engine, {"flowlets": [{"ref": "a", "appId": "set", "args": {"value": 7}}]}
                )
                async with write_lock_held(path):
                    # Many polls: restarting at each failure, the dispatcher would spend the
                    # restarts its supervisor allows (3 in 5 s) in a fraction of this.
                    await trio.sleep(1.5)
                await wait_until(
                    lambda: any(e["event"] == "dispatcher.store_back" for e in logs),
                    what="the dispatcher reaching the database again",
                )
                done = await run(engine, flow, timeout=10)
                assert done.state is PlayState.DONE
                assert done.output == 7
    outage = [e for e in logs if e["event"].startswith("dispatcher.store_")]
    # Said once when it began and once when it ended, not at every retry.
    assert [e["event"] for e in outage] == ["dispatcher.store_unavailable", "dispatcher.store_back"]
    assert "locked" in outage[0]["error"]
    assert outage[1]["retries"] >= 2
