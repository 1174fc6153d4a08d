"""Errors of the components service. Problems name fields, never values (a config holds
passwords and keys)."""

from __future__ import annotations

import attrs


@attrs.frozen
class Problem:
    field: str
    message: str


class ComponentServiceError(Exception):
    code = "COMPONENT_ERROR"


class InvalidComponent(ComponentServiceError):
    code = "VALIDATION_ERROR"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))


class ComponentNotFound(ComponentServiceError):
    code = "COMPONENT_NOT_FOUND"


class ComponentNameTaken(ComponentServiceError):
    code = "COMPONENT_NAME_TAKEN"


class ComponentConflict(ComponentServiceError):
    code = "COMPONENT_CONFLICT"
