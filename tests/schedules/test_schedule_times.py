"""Fire instants in a schedule's timezone, across DST, against tables written by hand.

The rule (flow8/services/schedules/_time.py): a local time that occurs twice (fall-back)
fires once, at its first occurrence; a local time that is skipped (spring-forward) fires
once, at the first valid instant after it (the transition).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flow8.services.schedules import CronError, parse_cron, parse_timezone, upcoming


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _fires(cron: str, zone: str, after: str, count: int) -> list[str]:
    return [t.strftime("%Y-%m-%d %H:%M") for t in upcoming(cron, zone, _utc(after), count)]


# Europe/Berlin 2026: spring-forward Sun 29 March 02:00 CET -> 03:00 CEST (01:00 UTC);
# fall-back Sun 25 October 03:00 CEST -> 02:00 CET (01:00 UTC).
# America/New_York 2026: spring-forward Sun 8 March 02:00 EST -> 03:00 EDT (07:00 UTC);
# fall-back Sun 1 November 02:00 EDT -> 01:00 EST (06:00 UTC).
TABLE = [
    # daily at 02:30 Berlin: 28 Mar 02:30 CET, 29 Mar skipped -> 03:00 CEST, 30 Mar 02:30 CEST
    ("30 2 * * *", "Europe/Berlin", "2026-03-27 23:00",
     ["2026-03-28 01:30", "2026-03-29 01:00", "2026-03-30 00:30"]),
    # daily at 02:30 Berlin across the fall-back: once on 25 Oct, at the first 02:30 (CEST)
    ("30 2 * * *", "Europe/Berlin", "2026-10-23 23:00",
     ["2026-10-24 00:30", "2026-10-25 00:30", "2026-10-26 01:30"]),
    # every 30 minutes in Berlin's repeated hour: 02:00 and 02:30 CEST, not again in CET
    ("*/30 * * * *", "Europe/Berlin", "2026-10-24 23:45",
     ["2026-10-25 00:00", "2026-10-25 00:30", "2026-10-25 02:00", "2026-10-25 02:30"]),
    # every 30 minutes across Berlin's gap: 01:30 CET, then 02:00/02:30 skipped -> one fire
    # at 03:00 CEST (together with 03:00 itself), then 03:30 CEST
    ("*/30 * * * *", "Europe/Berlin", "2026-03-28 23:45",
     ["2026-03-29 00:00", "2026-03-29 00:30", "2026-03-29 01:00", "2026-03-29 01:30"]),
    # hourly in New York across the spring-forward: 01:00 EST, (02:00 skipped ->) 03:00 EDT
    ("@hourly", "America/New_York", "2026-03-08 05:30",
     ["2026-03-08 06:00", "2026-03-08 07:00", "2026-03-08 08:00"]),
    # daily at 02:15 New York: 8 March skipped -> 03:00 EDT
    ("15 2 * * *", "America/New_York", "2026-03-07 00:00",
     ["2026-03-07 07:15", "2026-03-08 07:00", "2026-03-09 06:15"]),
    # daily at 01:30 New York across the fall-back: once, at 01:30 EDT
    ("30 1 * * *", "America/New_York", "2026-10-31 00:00",
     ["2026-10-31 05:30", "2026-11-01 05:30", "2026-11-02 06:30"]),
    # hourly in New York's repeated hour: 01:00 EDT once, then 02:00 EST
    ("0 * * * *", "America/New_York", "2026-11-01 04:30",
     ["2026-11-01 05:00", "2026-11-01 07:00", "2026-11-01 08:00"]),
    # 6 fields, seconds first: every 20 seconds
    ("*/20 * * * * *", "UTC", "2026-01-01 00:00",
     ["2026-01-01 00:00", "2026-01-01 00:00", "2026-01-01 00:01"]),
]  # fmt: skip


@pytest.mark.parametrize(("cron", "zone", "after", "expected"), TABLE)
def test_fire_instants_match_the_table(
    cron: str, zone: str, after: str, expected: list[str]
) -> None:
    assert _fires(cron, zone, after, len(expected)) == expected


def test_seconds_are_kept_and_the_macros_read_as_documented() -> None:
    got = upcoming("*/20 * * * * *", "UTC", _utc("2026-01-01 00:00"), 3)
    assert [t.strftime("%H:%M:%S") for t in got] == ["00:00:20", "00:00:40", "00:01:00"]
    assert _fires("@daily", "Europe/Berlin", "2026-06-01 12:00", 2) == [
        "2026-06-01 22:00",
        "2026-06-02 22:00",
    ]
    assert _fires("@weekly", "UTC", "2026-06-01 12:00", 1) == ["2026-06-07 00:00"]  # Sunday
    assert _fires("@monthly", "UTC", "2026-06-01 12:00", 1) == ["2026-07-01 00:00"]


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("", "is empty"),
        ("* * *", "has 3 fields"),
        ("* * * * * * *", "has 7 fields"),
        ("61 * * * *", "is not a valid cron expression"),
        ("@yearly", "is not one of @hourly, @daily, @weekly, @monthly"),
        ("0 0 31 2 *", "never fires"),
    ],
)
def test_bad_cron_says_why(cron: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        parse_cron(cron)


def test_unknown_timezone_is_refused() -> None:
    with pytest.raises(CronError, match="not a known IANA timezone"):
        parse_timezone("Mars/Olympus")
