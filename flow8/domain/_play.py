"""Plays (executions of a pinned flow version) and play layers (one per step and iteration)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from ._trace import PlayTrace
from ._usage import AiUsage, UsageTotals
from .exceptions import InvalidTransition


class PlayState(enum.StrEnum):
    NEW = "NEW"
    RUN = "RUN"
    WAIT = "WAIT"
    DEFERRED = "DEFERRED"
    DONE = "DONE"
    FAIL = "FAIL"
    CANCEL = "CANCEL"

    @property
    def final(self) -> bool:
        return self in _FINAL_PLAY


class LayerState(enum.StrEnum):
    NEW = "NEW"
    RUN = "RUN"
    WAIT = "WAIT"
    DONE = "DONE"
    FAIL = "FAIL"
    SKIP = "SKIP"
    FILTERED = "FILTERED"

    @property
    def final(self) -> bool:
        return self in _FINAL_LAYER


_FINAL_PLAY = frozenset({PlayState.DONE, PlayState.FAIL, PlayState.CANCEL})
_FINAL_LAYER = frozenset({LayerState.DONE, LayerState.FAIL, LayerState.SKIP, LayerState.FILTERED})


class PlayTransition(enum.StrEnum):
    """Every change the engine makes to a play's lifecycle, by name (the engine's
    ``PlayLedger`` has one method of each name, guarded by the table below). A change
    that keeps the play RUN is listed too: its guard asks the same question, whether the
    play is still where that change may happen."""

    CREATE = "create"  # stored, for a dispatcher to claim (DEFERRED past maxConcurrent)
    CREATE_CLAIMED = "create_claimed"  # stored already claimed by the instance starting it
    CLAIM = "claim"  # a dispatcher takes a NEW play, a lapsed RUN one, a WAIT one now due
    RENEW = "renew"  # its holder extends the lease
    START = "start"  # its holder records when it started
    PARK = "park"  # its holder suspends it (a delay, a back-off, an approval)
    WAKE = "wake"  # approved: it runs again
    DEFER = "defer"  # claimed, but its flow runs as many plays as it may
    PROMOTE = "promote"  # its flow has room again: a dispatcher may claim it
    FINISH = "finish"  # its holder records its end
    COUNT_CRASH = "count_crash"  # its holder's actor crashed
    BACK_OFF = "back_off"  # ... and runs again when its lease lapses, later than usual
    REQUEST_CANCEL = "request_cancel"  # its holder is asked to cancel it
    END_UNHELD = "end_unheld"  # no actor runs it: ended as it was seen (cancelled, crashed)
    REJECT = "reject"  # its approval was refused
    CANCEL = "cancel"  # cancelled while nothing runs it
    HAND_BACK = "hand_back"  # claimed at birth, but its actor could not start here


_RUN = frozenset({PlayState.RUN})

# transition -> (the states it may leave, the states it may reach); a creation leaves none.
_PLAY_CHANGES: Mapping[PlayTransition, tuple[frozenset[PlayState], frozenset[PlayState]]] = {
    PlayTransition.CREATE: (frozenset(), frozenset({PlayState.NEW, PlayState.DEFERRED})),
    PlayTransition.CREATE_CLAIMED: (frozenset(), _RUN),
    PlayTransition.CLAIM: (frozenset({PlayState.NEW, PlayState.RUN, PlayState.WAIT}), _RUN),
    PlayTransition.RENEW: (_RUN, _RUN),
    PlayTransition.START: (_RUN, _RUN),
    PlayTransition.PARK: (_RUN, frozenset({PlayState.WAIT})),
    PlayTransition.WAKE: (frozenset({PlayState.WAIT}), _RUN),
    PlayTransition.DEFER: (_RUN, frozenset({PlayState.DEFERRED})),
    PlayTransition.PROMOTE: (frozenset({PlayState.DEFERRED}), frozenset({PlayState.NEW})),
    PlayTransition.FINISH: (_RUN, _FINAL_PLAY),
    PlayTransition.COUNT_CRASH: (_RUN, _RUN),
    PlayTransition.BACK_OFF: (_RUN, _RUN),
    PlayTransition.REQUEST_CANCEL: (_RUN, _RUN),
    PlayTransition.END_UNHELD: (_RUN, frozenset({PlayState.FAIL, PlayState.CANCEL})),
    PlayTransition.REJECT: (frozenset({PlayState.WAIT}), frozenset({PlayState.FAIL})),
    PlayTransition.CANCEL: (
        frozenset({PlayState.NEW, PlayState.DEFERRED, PlayState.WAIT}),
        frozenset({PlayState.CANCEL}),
    ),
    PlayTransition.HAND_BACK: (_RUN, frozenset({PlayState.NEW})),
}

# The state graph, drawn from the named transitions: nothing else may change a play's state.
_PLAY_TRANSITIONS: Mapping[PlayState, frozenset[PlayState]] = {
    state: frozenset(
        target
        for sources, targets in _PLAY_CHANGES.values()
        if state in sources
        for target in targets
    )
    for state in PlayState
}


def check_play_transition(current: PlayState, new: PlayState) -> None:
    """Raise :class:`InvalidTransition` unless ``current -> new`` is allowed."""
    if new not in _PLAY_TRANSITIONS[current]:
        raise InvalidTransition(f"play cannot go from {current} to {new}")


def play_sources(new: PlayState) -> tuple[PlayState, ...]:
    """The states a play may be in for a transition to ``new`` (used for conditional updates)."""
    return tuple(s for s, targets in _PLAY_TRANSITIONS.items() if new in targets)


def transition_sources(transition: PlayTransition) -> tuple[PlayState, ...]:
    """The states ``transition`` may leave, in declaration order (a store filter built from
    them is the same every time); empty for a creation."""
    sources = _PLAY_CHANGES[transition][0]
    return tuple(s for s in PlayState if s in sources)


def transition_targets(transition: PlayTransition) -> tuple[PlayState, ...]:
    """The states ``transition`` may reach, in declaration order."""
    targets = _PLAY_CHANGES[transition][1]
    return tuple(s for s in PlayState if s in targets)


def check_transition_target(transition: PlayTransition, new: PlayState) -> None:
    """Raise :class:`InvalidTransition` unless ``transition`` may reach ``new``."""
    if new not in _PLAY_CHANGES[transition][1]:
        raise InvalidTransition(f"a play's {transition} cannot make it {new}")


class TriggerKind(enum.StrEnum):
    MANUAL = "manual"
    API = "api"
    CRON = "cron"
    SCHEDULE = "schedule"  # a tick of a schedule (flow8.jobs scheduler) or its run-now
    CHANNEL = "channel"
    MCP = "mcp"
    SUBFLOW = "subflow"
    CLI = "cli"
    RETRY = "retry"


@attrs.frozen
class Trigger:
    kind: TriggerKind = TriggerKind.MANUAL
    source: str | None = None


class WaitReason(enum.StrEnum):
    APPROVAL = "approval"
    DELAY = "delay"
    RETRY = "retry"


@attrs.frozen
class Attempt:
    """One try of a step. ``error`` is None for the attempt that succeeded."""

    number: int
    started_at: float
    finished_at: float | None = None
    error: str | None = None


@attrs.frozen
class PlayLayer:
    """The record of one step in one iteration (``iteration`` is the path of iteration
    indexes from the outermost iterator; empty outside any iterator)."""

    play_id: str
    company_id: str
    ref: str
    state: LayerState
    iteration: tuple[int, ...] = ()
    app_id: str = ""
    args: Any = None
    output: Any = None
    error: str | None = None
    attempts: tuple[Attempt, ...] = ()
    started_at: float | None = None
    finished_at: float | None = None
    seq: int = 0
    # The component calls of its last attempt ({componentKind, operation, seq, input, output,
    # durationMs, error}), masked, when its flow records them (execution.recordCalls).
    calls: tuple[Any, ...] | None = None
    # What its metered calls spent (AI steps), every attempt's; stored only when there are.
    usage: tuple[AiUsage, ...] = ()

    @property
    def key(self) -> str:
        return layer_key(self.play_id, self.ref, self.iteration)


def layer_key(play_id: str, ref: str, iteration: tuple[int, ...]) -> str:
    """Deterministic layer id: re-running a step after a crash overwrites, never duplicates."""
    suffix = "/".join(str(i) for i in iteration)
    return f"{play_id}:{ref}:{suffix}"


@attrs.frozen
class Play:
    """One execution of a pinned flow version."""

    id: str
    company_id: str
    flow_id: str
    flow_version: int
    state: PlayState
    input: Any = None
    output: Any = None
    error: str | None = None
    trigger: Trigger = Trigger()
    parent_play_id: str | None = None
    root_play_id: str | None = None  # the play that started this tree (None: this one)
    depth: int = 0
    idempotency_key: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    wait_reason: WaitReason | None = None
    wait_ref: str | None = None
    wake_at: float | None = None
    retry_of: str | None = None
    resume_from: str | None = None
    kv_parents: tuple[str, ...] = ()
    # The sum of its layers' usage (AI steps); stored only once a metered call was made.
    usage: UsageTotals | None = None
    # The request that started it (its correlation id, the W3C trace it carried), which its
    # logs and outbound requests carry on; a subflow's child has its parent's. Stored only
    # when there is one.
    trace: PlayTrace | None = None
