"""Plays and steps, counted from the events the engine publishes.

An observer on the bus (`EventBus.observe`), not a subscriber: it runs inside `publish`, so it
never falls behind and is never dropped, and the engine is not touched. Every end of a play is
one event (PLAY_COMPLETED or PLAY_FAILED, whoever ended it: its actor, a cancel, a rejection,
too many crashes), and every step's end is one (LAYER_COMPLETED or LAYER_FAILED).
"""

from __future__ import annotations

from typing import Any

import attrs
from prometheus_client import CollectorRegistry, Counter, Histogram

from flow8 import events as ev

# Steps range from a `set` (microseconds) to an HTTP call or a subflow (seconds) to a delay.
STEP_SECONDS_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
)  # fmt: skip
OBSERVED = (
    ev.PLAY_STARTED,
    ev.PLAY_COMPLETED,
    ev.PLAY_FAILED,
    ev.LAYER_COMPLETED,
    ev.LAYER_FAILED,
)
_UNKNOWN = "unknown"  # an event from before the engine said (none today)


@attrs.define
class PlayMeter:
    """`flow8_plays_started_total{trigger}`, `flow8_plays_finished_total{state,trigger}` and
    `flow8_step_duration_seconds{module,state}` (a step's time from its first attempt's start
    to its end, retries and parked waits included; filtered steps did not run: not counted)."""

    started: Counter
    finished: Counter
    steps: Histogram
    # Label children by their values: `labels()` takes a lock and builds a key each time.
    _children: dict[tuple[str, ...], Any] = attrs.field(factory=dict)

    @classmethod
    def on(cls, registry: CollectorRegistry) -> PlayMeter:
        return cls(
            Counter(
                "flow8_plays_started",
                "Plays started on this instance, by trigger.",
                ["trigger"],
                registry=registry,
            ),
            Counter(
                "flow8_plays_finished",
                "Plays ended (DONE, FAIL or CANCEL) by this instance, by state and trigger.",
                ["state", "trigger"],
                registry=registry,
            ),
            Histogram(
                "flow8_step_duration_seconds",
                "Time of each step that ran on this instance, by module (appId) and end state.",
                ["module", "state"],
                buckets=STEP_SECONDS_BUCKETS,
                registry=registry,
            ),
        )

    def watch(self, bus: ev.EventBus) -> None:
        bus.observe(OBSERVED, self.saw)

    def saw(self, event: ev.Event) -> None:
        data = event.data
        kind = event.type
        if kind == ev.PLAY_STARTED:
            trigger = data.get("trigger") or _UNKNOWN
            self._child(self.started, "s", trigger).inc()
        elif kind == ev.PLAY_COMPLETED or kind == ev.PLAY_FAILED:
            state, trigger = data.get("state") or _UNKNOWN, data.get("trigger") or _UNKNOWN
            self._child(self.finished, "f", state, trigger).inc()
        else:
            started, finished = data.get("startedAt"), data.get("finishedAt")
            state = data.get("state") or _UNKNOWN
            if started is None or finished is None or state == "FILTERED":
                return
            module = data.get("appId") or _UNKNOWN
            self._child(self.steps, "d", module, state).observe(max(0.0, finished - started))

    def _child(self, metric: Any, tag: str, *values: str) -> Any:
        key = (tag, *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child
