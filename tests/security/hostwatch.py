"""What the machine did while an attack ran: who used the cores, how long the server waited
for one, and how long the server's group commits took.

The bystander's bound is about the server (does it keep answering?), but its answers are
timed on a machine the server shares with the attacking test, the probe, and in a whole
test run whatever else is still running. When a bound fails, this report (printed beside the
bystander's) says which it was: the server's own work, its commits (fsync), or cores taken by
other processes.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import httpx

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (its threads included, its children not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _run_queue_seconds(pid: int) -> float:
    """Time the process's threads spent runnable but not running (schedstat's run delay):
    waiting for a busy core, or for an idle one to wake. On this VM every hand-over between
    the event loop and the store's writer thread costs tens of microseconds of it, so a busy
    server shows seconds of it with a core to spare; compare runs, not the figure alone."""
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0.0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def _machine() -> tuple[float, float]:
    """Busy and total core-seconds of the whole machine so far (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / _TICK, sum(fields[:8]) / _TICK


def _every_process() -> dict[int, tuple[str, float]]:
    seen: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                name = (entry / "comm").read_text().strip()
            except OSError:
                continue
            seen[int(entry.name)] = (name, _cpu_seconds(int(entry.name)))
    return seen


def _commits(base: str, token: str) -> tuple[int, float, dict[str, float]]:
    """The server's group commits so far: count, seconds in all, and the histogram."""
    try:
        text = httpx.get(
            f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=5
        ).text
    except httpx.HTTPError:
        return 0, 0.0, {}
    count, total, buckets = 0, 0.0, {}
    for line in text.splitlines():
        if line.startswith("flow8_store_commit_duration_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[le] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("flow8_store_commit_duration_seconds_count"):
            count = int(float(line.rsplit(" ", 1)[1]))
        elif line.startswith("flow8_store_commit_duration_seconds_sum"):
            total = float(line.rsplit(" ", 1)[1])
    return count, total, buckets


@attrs.frozen
class Snapshot:
    machine_busy: float
    machine_total: float
    server_cpu: float
    server_waited: float
    processes: dict[int, tuple[str, float]]
    commits: tuple[int, float, dict[str, float]]


@attrs.define
class HostWatch:
    """Snapshots around an attack; `report` compares the two."""

    base: str
    server_pid: int
    # The server's admin token, when it has one: then /metrics adds its commits to the
    # report. (The attack suite's servers run without one, as shipped: a token turns on
    # metrics, which every request pays for.)
    token: str | None = None

    def snapshot(self) -> Snapshot:
        busy, total = _machine()
        return Snapshot(
            busy,
            total,
            _cpu_seconds(self.server_pid),
            _run_queue_seconds(self.server_pid),
            _every_process(),
            _commits(self.base, self.token) if self.token else (0, 0.0, {}),
        )

    def report(self, before: Snapshot, after: Snapshot, *, ours: set[int]) -> str:
        """One line: cores used by the server, by us (the test, the probe) and by every other
        process (the busiest named), the server's wait for a core, and its commits."""
        wall = max(after.machine_total - before.machine_total, 1e-9) / (os.cpu_count() or 1)
        busy = (after.machine_busy - before.machine_busy) / wall
        server = (after.server_cpu - before.server_cpu) / wall
        waited = after.server_waited - before.server_waited
        used: dict[int, tuple[str, float]] = {}
        for pid, (name, cpu) in after.processes.items():
            delta = cpu - before.processes.get(pid, (name, 0.0))[1]
            if delta > 0:
                used[pid] = (name, delta / wall)
        mine = sum(share for pid, (_, share) in used.items() if pid in ours)
        others = {p: v for p, v in used.items() if p not in ours and p != self.server_pid}
        busiest = sorted(others.values(), key=lambda v: -v[1])[:3]
        line = (
            f"host over {wall:.1f} s: {busy:.2f} cores busy: server {server:.2f}, test and probe "
            f"{mine:.2f}, others {sum(v for _, v in others.values()):.2f} "
            f"({', '.join(f'{n} {v:.2f}' for n, v in busiest) or 'none'}); the server's threads "
            f"waited {waited * 1000:.0f} ms in all between being woken and running"
        )
        n0, s0, b0 = before.commits
        n1, s1, b1 = after.commits
        if commits := n1 - n0:
            # The smallest bucket bound every commit of the attack fell under.
            slowest = next((le for le, n in b1.items() if n - b0.get(le, 0.0) >= commits), "?")
            line += (
                f"; {commits} commits, mean {(s1 - s0) / commits * 1000:.1f} ms, "
                f"all under {slowest} s"
            )
        return line
