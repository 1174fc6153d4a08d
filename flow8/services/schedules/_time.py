"""When a schedule fires: cron expressions read in the schedule's timezone, fire instants in UTC.

Pure functions, no clock of their own. The rule:

* The cron expression is matched against *local wall-clock times* of the schedule's timezone
  (``zoneinfo``), so ``0 9 * * *`` in ``Europe/Berlin`` fires at 09:00 Berlin time all year.
  Every fire instant is then converted to UTC, which is what is stored and compared.
* **Fall-back** (a local time that occurs twice, e.g. 02:30 on the last Sunday of October in
  Berlin): it fires **once**, at its first occurrence (the earlier UTC instant, still on
  summer time). During the repeated hour nothing fires a second time.
* **Spring-forward** (a local time that never happens, e.g. 02:30 on the last Sunday of March
  in Berlin): it fires **once, at the first valid instant after it**, which is the instant of
  the transition (03:00 local). Several skipped times, and a tick at the transition itself,
  fire once together at that instant (one tick per instant).

Cron syntax: 5 fields (minute hour day-of-month month day-of-week) or 6 fields with
**seconds first** (``*/10 * * * * *`` = every 10 seconds), or one of ``@hourly``, ``@daily``,
``@weekly``, ``@monthly``. Day-of-month and day-of-week combine with OR when both are given
(classic cron).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

__all__ = [
    "MACROS",
    "CronError",
    "fire_times",
    "next_fire",
    "parse_cron",
    "parse_timezone",
    "truncate_ms",
    "upcoming",
]

MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
}
_MAX_SCAN = 200_000  # candidates examined for one answer (a cron matching nothing stops here)


class CronError(ValueError):
    """A cron expression or timezone that cannot be used; the message says why."""


def parse_cron(expression: str) -> tuple[str, bool]:
    """The expression croniter reads, and whether it has seconds; ``CronError`` if invalid."""
    text = " ".join(expression.split())
    if not text:
        raise CronError("is empty: give 5 fields, 6 with seconds first, or @hourly, @daily, ...")
    if text.startswith("@"):
        if text not in MACROS:
            raise CronError(f"{text!r} is not one of {', '.join(MACROS)}")
        return MACROS[text], False
    fields = text.split(" ")
    if len(fields) not in (5, 6):
        raise CronError(
            f"has {len(fields)} fields: give 5 (minute hour day month weekday) "
            "or 6 (second minute hour day month weekday)"
        )
    seconds = len(fields) == 6
    try:
        ok = croniter.is_valid(text, second_at_beginning=seconds)
    except Exception:
        ok = False
    if not ok:
        raise CronError(f"{text!r} is not a valid cron expression")
    try:
        _iterator(text, seconds, datetime(2000, 1, 1)).get_next(datetime)
    except Exception as e:
        raise CronError(f"{text!r} never fires") from e
    return text, seconds


def parse_timezone(name: str) -> ZoneInfo:
    """The zone named ``name`` (IANA, e.g. ``Europe/Berlin``, ``UTC``); ``CronError`` if
    unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(
            f"{name!r} is not a known IANA timezone (e.g. Europe/Berlin, UTC)"
        ) from None


def _iterator(text: str, seconds: bool, start: datetime) -> croniter:
    return croniter(text, start, second_at_beginning=seconds)


def _to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant a local wall time fires at (see the module's rule)."""
    first = wall.replace(tzinfo=zone, fold=0)
    instant = first.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant  # exists (the first occurrence when it occurs twice)
    # Skipped by a spring-forward: the transition instant lies in (wall - after, wall - before].
    low = int(wall.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())
    high = int(instant.timestamp())
    while high - low > 1:  # low: still before the gap's end, high: after it
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(zone).replace(tzinfo=None) > wall:
            high = mid
        else:
            low = mid
    return datetime.fromtimestamp(high, UTC)


def fire_times(expression: str, timezone: str, after: datetime) -> Iterator[datetime]:
    """The fire instants (aware, UTC) strictly after ``after`` (aware), in order, each once."""
    text, seconds = parse_cron(expression)
    zone = parse_timezone(timezone)
    after = after.astimezone(UTC)
    wall = after.astimezone(zone).replace(tzinfo=None)
    if not seconds:
        wall = wall.replace(second=0, microsecond=0)
    it = _iterator(text, seconds, wall)
    last: datetime | None = None
    scanned = 0
    while scanned < _MAX_SCAN:
        scanned += 1
        candidate = _to_utc(it.get_next(datetime), zone)
        if candidate <= after or candidate == last:
            continue  # the second pass of a repeated hour, or a gap's instant already given
        last = candidate
        scanned = 0
        yield candidate


def next_fire(expression: str, timezone: str, after: datetime) -> datetime | None:
    """The first fire instant strictly after ``after``; None if the expression never fires."""
    return next(fire_times(expression, timezone, after), None)


def upcoming(expression: str, timezone: str, after: datetime, count: int = 5) -> list[datetime]:
    """The next ``count`` fire instants after ``after``."""
    out: list[datetime] = []
    for instant in fire_times(expression, timezone, after):
        out.append(instant)
        if len(out) == count:
            break
    return out


def truncate_ms(instant: datetime) -> datetime:
    """``instant`` to the millisecond, as the store keeps it."""
    return instant.replace(microsecond=instant.microsecond // 1000 * 1000)
