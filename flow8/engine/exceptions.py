"""Errors raised by the engine.

Hierarchy::

    EngineError
    ├── StepError                a step failed (carries the flowlet ref); the layer fails
    │   ├── StepTimeout          the step ran past its timeout
    │   ├── OutputTooLarge       the step's output exceeds the configured limit
    │   └── Interrupted          a non-idempotent step was cut off by a crash; not re-run
    ├── InvalidInput             a play's input does not match the flow's inputSchema
    ├── IdempotencyKeyReused     a start's idempotency key was used with another request
    ├── PlayLimitReached         a start the company's play limits refuse (``retry_after``)
    ├── StartTimedOut            nothing was stored before a start's deadline: safe to retry
    ├── PlayNotFound             no such play for this company
    ├── KvError                  a bad KV request (unknown scope, value too large)
    ├── FlowNotFound             no such flow (or flow version) for this company
    ├── FlowDisabled             a trigger started a disabled flow (only `force` may)
    └── PlayStateError           the play is not in a state that allows the request

Expression errors (``ExpressionError``, ``ExpressionLimit``) are not engine errors: they
belong to ``flow8.expressions``, below the engine. The engine reports them as failed steps
(``EXPRESSION_LIMIT`` for a limit) or as problems of a flow being saved.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of every engine error."""


class StepError(EngineError):
    def __init__(self, ref: str, message: str) -> None:
        self.ref = ref
        self.message = message
        super().__init__(f"step {ref!r}: {message}")


class StepTimeout(StepError):
    pass


class OutputTooLarge(StepError):
    pass


class Interrupted(StepError):
    pass


class BudgetExceeded(StepError):
    """A metered step would start past its company's or flow's budget (not retried)."""


class InvalidInput(EngineError):
    pass


class IdempotencyKeyReused(EngineError):
    """A start named an idempotency key already used (within the window) for a different
    request: another input, or another flow version asked for. ``play_id`` is the play that
    the key stands for."""

    def __init__(self, key: str, play_id: str) -> None:
        self.key = key
        self.play_id = play_id
        super().__init__(
            f"idempotency key {key!r} was already used with a different request (play "
            f"{play_id}); use a new key for a new request"
        )


class PlayLimitReached(EngineError):
    """A start refused by a limit on plays (per company, or per tree of plays). ``code``
    names it (``PLAY_RATE_LIMIT``, ``PLAY_TREE_LIMIT``); ``retry_after`` is in seconds,
    None when waiting will not help."""

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        self.code = code
        self.retry_after = retry_after
        super().__init__(message)


class StartTimedOut(EngineError):
    """A start ran past its deadline before the play was handed to the store: nothing was
    created, so the request may be retried."""


class PlayNotFound(EngineError):
    pass


class FlowNotFound(EngineError):
    pass


class FlowDisabled(EngineError):
    """A start of a disabled flow without ``force``: its triggers (schedules, channels, MCP,
    subflow steps) stop with it; a person or the API may still start it on purpose."""

    def __init__(self, flow_id: str) -> None:
        self.flow_id = flow_id
        super().__init__(f"flow {flow_id!r} is disabled: enable it to start plays")


class PlayStateError(EngineError):
    pass
