"""Errors of the schedules service."""

from __future__ import annotations

import attrs


@attrs.frozen
class Problem:
    field: str
    message: str


class ScheduleError(Exception):
    code = "SCHEDULE_ERROR"


class InvalidSchedule(ScheduleError):
    code = "VALIDATION_ERROR"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))


class ScheduleNotFound(ScheduleError):
    code = "SCHEDULE_NOT_FOUND"
