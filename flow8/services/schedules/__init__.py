"""Schedules: a company's cron timetables of its flows.

``_time`` holds the time rules (cron in the schedule's timezone, UTC instants, DST); the
``scheduler`` job (``flow8.jobs``) fires them.
"""

from ._models import MISFIRE, Schedule
from ._service import (
    COLLECTION,
    ScheduleService,
    check,
    schedule_input,
    tick_key,
    utcnow,
)
from ._time import CronError, fire_times, next_fire, parse_cron, parse_timezone, upcoming
from .exceptions import InvalidSchedule, Problem, ScheduleError, ScheduleNotFound

__all__ = [
    "COLLECTION",
    "MISFIRE",
    "CronError",
    "InvalidSchedule",
    "Problem",
    "Schedule",
    "ScheduleError",
    "ScheduleNotFound",
    "ScheduleService",
    "check",
    "fire_times",
    "next_fire",
    "parse_cron",
    "parse_timezone",
    "schedule_input",
    "tick_key",
    "upcoming",
    "utcnow",
]
