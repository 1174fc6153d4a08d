"""Errors raised by the engine.

Hierarchy::

    EngineError
    ├── ExpressionError          an expression does not parse, throws, times out, or
    │                            returns something that is not JSON
    ├── StepError                a step failed (carries the flowlet ref); the layer fails
    │   ├── StepTimeout          the step ran past its timeout
    │   ├── OutputTooLarge       the step's output exceeds the configured limit
    │   └── Interrupted          a non-idempotent step was cut off by a crash; not re-run
    ├── InvalidInput             a play's input does not match the flow's inputSchema
    ├── PlayNotFound             no such play for this company
    ├── FlowNotFound             no such flow (or flow version) for this company
    └── PlayStateError           the play is not in a state that allows the request
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of every engine error."""


class ExpressionError(EngineError):
    def __init__(self, source: str, message: str, *, where: str = "") -> None:
        self.source = source
        self.message = message
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}expression {{{{ {source} }}}} {message}")

    def at(self, where: str) -> ExpressionError:
        """The same error, located at a flowlet field (``ref.args.x``)."""
        located = ExpressionError(self.source, self.message, where=where)
        located.__cause__ = self.__cause__
        return located


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


class InvalidInput(EngineError):
    pass


class PlayNotFound(EngineError):
    pass


class FlowNotFound(EngineError):
    pass


class PlayStateError(EngineError):
    pass
