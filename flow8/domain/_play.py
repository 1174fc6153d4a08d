"""Plays (executions of a pinned flow version) and play layers (one per step and iteration)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from ._errors import InvalidTransition


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

# RUN -> RUN is a resume after a lapsed lease; WAIT -> FAIL is a rejected approval.
_PLAY_TRANSITIONS: Mapping[PlayState, frozenset[PlayState]] = {
    PlayState.NEW: frozenset({PlayState.RUN, PlayState.DEFERRED, PlayState.CANCEL, PlayState.FAIL}),
    PlayState.DEFERRED: frozenset({PlayState.NEW, PlayState.RUN, PlayState.CANCEL}),
    PlayState.RUN: frozenset(
        {PlayState.RUN, PlayState.WAIT, PlayState.DONE, PlayState.FAIL, PlayState.CANCEL}
    ),
    PlayState.WAIT: frozenset({PlayState.RUN, PlayState.FAIL, PlayState.CANCEL}),
    PlayState.DONE: frozenset(),
    PlayState.FAIL: frozenset(),
    PlayState.CANCEL: frozenset(),
}


def check_play_transition(current: PlayState, new: PlayState) -> None:
    """Raise :class:`InvalidTransition` unless ``current -> new`` is allowed."""
    if new not in _PLAY_TRANSITIONS[current]:
        raise InvalidTransition(f"play cannot go from {current} to {new}")


def play_sources(new: PlayState) -> tuple[PlayState, ...]:
    """The states a play may be in for a transition to ``new`` (used for conditional updates)."""
    return tuple(s for s, targets in _PLAY_TRANSITIONS.items() if new in targets)


class TriggerKind(enum.StrEnum):
    MANUAL = "manual"
    API = "api"
    CRON = "cron"
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
