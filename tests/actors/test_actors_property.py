"""Property: random crash sequences against random supervision trees match an OTP model.

The model below is an independent, plain re-statement of the OTP rules (REFERENCE §1). After
every crash the runtime's restart counts and running states must equal the model's, and the
number of live child incarnation tasks must equal the number of running nodes: no orphans.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio
import trio.testing
from actors_testkit import Log, live_incarnations, settle, worker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actors

RESTARTS = list(actors.Restart)
STRATEGIES = list(actors.Strategy)


@attrs.define(eq=False)
class MNode:
    path: str
    restart: actors.Restart
    children: list[MNode] | None = None  # None for a worker
    strategy: actors.Strategy = actors.Strategy.ONE_FOR_ONE
    intensity: int = 1
    period: float = 5.0
    running: bool = False
    restarts: int = 0
    active: list[MNode] = attrs.Factory(list)
    times: list[float] = attrs.Factory(list)
    parent: MNode | None = None

    def start(self) -> None:
        self.running = True
        if self.children is not None:
            self.active = list(self.children)
            self.times = []
            for child in self.children:
                child.start()

    def stop(self) -> None:
        self.running = False
        if self.children is not None:
            for child in self.active:
                child.stop()

    def walk(self) -> list[MNode]:
        out = [self]
        for child in self.children or []:
            out.extend(child.walk())
        return out


def model_exit(sup: MNode, child: MNode, now: float, abnormal: bool) -> bool:
    """A child of ``sup`` ended. Returns False when ``sup`` itself fails (escalates)."""
    child.stop()
    restart = child.restart is actors.Restart.PERMANENT or (
        child.restart is actors.Restart.TRANSIENT and abnormal
    )
    if not restart:
        if child.restart is actors.Restart.TEMPORARY:
            sup.active.remove(child)
        return True
    sup.times = [t for t in sup.times if now - t < sup.period] + [now]
    if len(sup.times) > sup.intensity:
        sup.stop()
        return False
    index = sup.active.index(child)
    if sup.strategy is actors.Strategy.ONE_FOR_ONE:
        affected = [child]
    elif sup.strategy is actors.Strategy.ONE_FOR_ALL:
        affected = list(sup.active)
    else:
        affected = sup.active[index:]
    for other in affected:
        if other is not child:
            other.stop()
            if other.restart is actors.Restart.TEMPORARY:
                sup.active.remove(other)
                continue
        other.restarts += 1
        other.start()
    return True


def crash_in_model(node: MNode, now: float, abnormal: bool = True) -> bool:
    """End ``node`` (crash or normal exit); returns False when the root failed."""
    while node.parent is not None:
        if model_exit(node.parent, node, now, abnormal):
            return True
        node = node.parent
        abnormal = True  # a supervisor that gives up fails abnormally
    return False


@st.composite
def trees(draw: st.DrawFn) -> MNode:
    def sup(path: str, depth: int, restart: actors.Restart) -> MNode:
        node = MNode(
            path,
            restart,
            children=[],
            strategy=draw(st.sampled_from(STRATEGIES)),
            intensity=draw(st.integers(0, 3)),
            period=draw(st.sampled_from([1.0, 5.0, 10.0])),
        )
        for i in range(draw(st.integers(1, 3))):
            restart_of_child = draw(st.sampled_from(RESTARTS))
            if depth < 2 and draw(st.booleans()):
                child = sup(f"{path}/s{i}", depth + 1, restart_of_child)
            else:
                child = MNode(f"{path}/w{i}", restart_of_child)
            child.parent = node
            assert node.children is not None
            node.children.append(child)
        return node

    return sup("root", 0, actors.Restart.TEMPORARY)


def to_spec(node: MNode, log: Log) -> actors.ChildSpec:
    name = node.path.rsplit("/", 1)[-1]
    if node.children is None:
        return worker(log, name, restart=node.restart)
    return actors.supervisor(
        name,
        [to_spec(child, log) for child in node.children],
        strategy=node.strategy,
        intensity=node.intensity,
        period=node.period,
        restart=node.restart,
    )


def check(rt: actors.Runtime, model: MNode) -> None:
    stats: dict[str, actors.Stats] = {}
    pending = [rt.stats()]
    while pending:
        s = pending.pop()
        stats[s.path] = s
        pending.extend(s.children)
    for node in model.walk():
        got = stats[node.path]
        assert got.restarts == node.restarts, node.path
        assert (got.state is actors.State.RUNNING) == node.running, (node.path, got.state)
    running = sum(1 for node in model.walk() if node.running)
    assert live_incarnations() == running


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=trees(), data=st.data())
def test_random_crashes_match_the_otp_model_and_leave_no_orphans(
    model: MNode, data: st.DataObject
) -> None:
    log = Log()
    step = st.tuples(
        st.integers(0, 50), st.sampled_from([0, 0.5, 1, 2, 6]), st.sampled_from(["crash", "exit"])
    )
    steps = data.draw(st.lists(step, min_size=1, max_size=15))

    async def scenario() -> None:
        failed = False
        runtime_error: actors.RuntimeFailed | None = None
        try:
            async with actors.open_runtime(to_spec(model, log)) as rt:
                model.start()
                check(rt, model)
                for pick, dt, how in steps:
                    await trio.sleep(dt)
                    workers = [n for n in model.walk() if n.children is None and n.running]
                    if not workers:
                        break
                    target = workers[pick % len(workers)]
                    rt.actor(target.path).send_nowait(how)
                    if not crash_in_model(target, trio.current_time(), how == "crash"):
                        failed = True
                        await trio.sleep_forever()  # the runtime cancels the block
                    await settle()
                    check(rt, model)
        except actors.RuntimeFailed as exc:
            runtime_error = exc
        assert (runtime_error is not None) == failed, runtime_error
        if runtime_error is not None:
            assert isinstance(runtime_error.__cause__, actors.SupervisorFailed)
        assert live_incarnations() == 0

    trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0))


def test_the_model_escalates_like_otp() -> None:
    # A sanity check of the oracle itself: intensity 1 allows one restart per period.
    root = MNode("root", actors.Restart.TEMPORARY, children=[], intensity=1, period=5.0)
    w = MNode("root/w0", actors.Restart.PERMANENT, parent=root)
    assert root.children is not None
    root.children.append(w)
    root.start()
    assert crash_in_model(w, 0.0)
    assert crash_in_model(w, 5.0)
    assert not crash_in_model(w, 6.0)
    assert w.restarts == 2


@pytest.mark.parametrize("unused", [None])
def test_model_rest_for_one_skips_temporaries(unused: Any) -> None:
    root = MNode("root", actors.Restart.TEMPORARY, children=[], intensity=5)
    root.strategy = actors.Strategy.REST_FOR_ONE
    kids = [
        MNode("root/w0", actors.Restart.PERMANENT, parent=root),
        MNode("root/w1", actors.Restart.PERMANENT, parent=root),
        MNode("root/w2", actors.Restart.TEMPORARY, parent=root),
    ]
    assert root.children is not None
    root.children.extend(kids)
    root.start()
    assert crash_in_model(kids[1], 0.0)
    assert [k.restarts for k in kids] == [0, 1, 0]
    assert [k.running for k in kids] == [True, True, False]
