"""Errors raised by the domain layer.

Hierarchy::

    DomainError
    ├── InvalidData              data at a boundary does not fit its model (every problem listed)
    │   └── FlowValidationError  a flow definition has one or more problems (all listed)
    └── InvalidTransition        a play or layer state change the state machine forbids
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs


@attrs.frozen
class Problem:
    """One thing wrong with a flow; ``path`` points at the offending field (API spelling)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class DomainError(Exception):
    """Base of every domain error."""


class InvalidData(DomainError):
    """Data read at a boundary (a request body, query parameters, a flow file) does not fit
    its model; ``problems`` lists every problem found, not just the first."""

    what = "invalid data"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(f"{self.what}: " + "; ".join(str(p) for p in self.problems))


class FlowValidationError(InvalidData):
    """A flow definition is invalid; ``problems`` lists every problem found, not just the first."""

    what = "invalid flow"


class InvalidTransition(DomainError):
    """A state change that the play/layer state machine does not allow."""
