"""Property: random crash sequences against random supervision trees match an OTP model.

The model below is an independent, plain re-statement of Erlang/OTP's supervisor rules, for
static supervisors (all three strategies) and dynamic ones. After every step the runtime's
restart counts and running states must equal the model's, a dynamic supervisor must hold
exactly the children the model says, and the number of live child incarnation tasks must equal
the number of running nodes: no orphans, no leaks.
"""

from __future__ import annotations

import functools

import attrs
import trio
import trio.testing
from actors_testkit import Log, Worker, live_incarnations, settle, worker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actors

RESTARTS = list(actors.Restart)
STRATEGIES = list(actors.Strategy)
WORKER, SUP, DYN = "worker", "sup", "dyn"


@attrs.define(eq=False)
class MNode:
    path: str
    restart: actors.Restart
    kind: str = WORKER
    children: list[MNode] = attrs.Factory(list)  # static children (SUP) or live ones (DYN)
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
        self.times = []
        if self.kind == SUP:
            self.active = list(self.children)
            for child in self.children:
                child.start()
        elif self.kind == DYN:
            self.children = []  # dynamic children do not survive a restart

    def stop(self) -> None:
        self.running = False
        if self.kind == SUP:
            for child in self.active:
                child.stop()
        elif self.kind == DYN:
            for child in self.children:
                child.stop()
            self.children = []

    def walk(self) -> list[MNode]:
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


def _allow(sup: MNode, now: float) -> bool:
    sup.times = [t for t in sup.times if now - t < sup.period] + [now]
    return len(sup.times) <= sup.intensity


def model_exit(sup: MNode, child: MNode, now: float, abnormal: bool) -> bool:
    """A child of ``sup`` ended. Returns False when ``sup`` itself fails (escalates)."""
    child.stop()
    restart = child.restart is actors.Restart.PERMANENT or (
        child.restart is actors.Restart.TRANSIENT and abnormal
    )
    if sup.kind == DYN:
        if not restart:
            sup.children.remove(child)
            return True
        if not _allow(sup, now):
            sup.stop()
            return False
        child.restarts += 1
        child.start()
        return True
    if not restart:
        if child.restart is actors.Restart.TEMPORARY:
            sup.active.remove(child)
        return True
    if not _allow(sup, now):
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


def end_in_model(node: MNode, now: float, abnormal: bool = True) -> bool:
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
            SUP,
            strategy=draw(st.sampled_from(STRATEGIES)),
            intensity=draw(st.integers(0, 3)),
            period=draw(st.sampled_from([1.0, 5.0, 10.0])),
        )
        for i in range(draw(st.integers(1, 3))):
            restart_of_child = draw(st.sampled_from(RESTARTS))
            kind = draw(st.sampled_from([WORKER, SUP, DYN] if depth < 2 else [WORKER]))
            if kind == SUP:
                child = sup(f"{path}/s{i}", depth + 1, restart_of_child)
            elif kind == DYN:
                child = MNode(
                    f"{path}/d{i}",
                    restart_of_child,
                    DYN,
                    intensity=draw(st.integers(0, 3)),
                    period=draw(st.sampled_from([1.0, 5.0])),
                )
            else:
                child = MNode(f"{path}/w{i}", restart_of_child)
            child.parent = node
            node.children.append(child)
        return node

    return sup("root", 0, actors.Restart.TEMPORARY)


def to_spec(node: MNode, log: Log) -> actors.ChildSpec:
    name = node.path.rsplit("/", 1)[-1]
    if node.kind == WORKER:
        return worker(log, name, restart=node.restart)
    if node.kind == DYN:
        return actors.dynamic_supervisor(
            name, intensity=node.intensity, period=node.period, restart=node.restart
        )
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
        if node.kind == DYN:
            assert sorted(c.path for c in got.children) == sorted(c.path for c in node.children)
    running = sum(1 for node in model.walk() if node.running)
    assert live_incarnations() == running


Step = tuple[int, float, str, actors.Restart]
STEP = st.tuples(
    st.integers(0, 50),
    st.sampled_from([0, 0.5, 1, 2, 6]),
    st.sampled_from(["crash", "exit", "spawn"]),
    st.sampled_from(RESTARTS),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=trees(), steps=st.lists(STEP, min_size=1, max_size=15))
def test_random_crashes_match_the_otp_model_and_leave_no_orphans(
    model: MNode, steps: list[Step]
) -> None:
    log = Log()

    async def step(rt: actors.Runtime, pick: int, how: str, restart: actors.Restart) -> bool:
        """Apply one step to the runtime and the model; False when the root must fail."""
        if how == "spawn":
            dyns = [n for n in model.walk() if n.kind == DYN and n.running]
            if not dyns:
                return True
            dyn = dyns[pick % len(dyns)]
            name = f"c{len(log.events)}-{pick}"
            child = MNode(f"{dyn.path}/{name}", restart, parent=dyn)
            await rt.dynamic_supervisor(dyn.path).start_actor(
                name, functools.partial(Worker, log, name), restart=restart
            )
            dyn.children.append(child)
            child.start()
            return True
        workers = [n for n in model.walk() if n.kind == WORKER and n.running]
        if not workers:
            return True
        target = workers[pick % len(workers)]
        rt.actor(target.path).send_nowait(how)
        return end_in_model(target, trio.current_time(), how == "crash")

    async def scenario() -> None:
        failed = False
        runtime_error: actors.RuntimeFailed | None = None
        try:
            async with actors.open_runtime(to_spec(model, log)) as rt:
                model.start()
                check(rt, model)
                for pick, dt, how, restart in steps:
                    await trio.sleep(dt)
                    if not await step(rt, pick, how, restart):
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


def _tree(strategy: actors.Strategy, *restarts: actors.Restart) -> tuple[MNode, list[MNode]]:
    root = MNode("root", actors.Restart.TEMPORARY, SUP, strategy=strategy, intensity=1)
    kids = [MNode(f"root/w{i}", r, parent=root) for i, r in enumerate(restarts)]
    root.children.extend(kids)
    root.start()
    return root, kids


def test_the_model_escalates_like_otp() -> None:
    # Sanity checks of the oracle itself: intensity 1 allows one restart per period.
    _, (w,) = _tree(actors.Strategy.ONE_FOR_ONE, actors.Restart.PERMANENT)
    assert end_in_model(w, 0.0)
    assert end_in_model(w, 5.0)
    assert not end_in_model(w, 6.0)
    assert w.restarts == 2


def test_the_model_rest_for_one_skips_temporaries() -> None:
    P, TMP = actors.Restart.PERMANENT, actors.Restart.TEMPORARY
    _, kids = _tree(actors.Strategy.REST_FOR_ONE, P, P, TMP)
    assert end_in_model(kids[1], 0.0)
    assert [k.restarts for k in kids] == [0, 1, 0]
    assert [k.running for k in kids] == [True, True, False]
