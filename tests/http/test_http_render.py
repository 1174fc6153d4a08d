"""Answers as the API converter (`flow8.domain.api`) renders them: camelCase keys, RFC 3339
UTC datetimes, enums by value, nested models, lists and mappings; what a client parses out of
every JSON answer."""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs

from flow8.domain import api
from flow8.http._responses import json_bytes


class Colour(enum.Enum):
    RED = "red"


class Mood(enum.StrEnum):
    CALM = "calm"


@attrs.frozen
class Inner:
    seen_at: datetime
    tags: tuple[str, ...] = ()
    ended_at: datetime | None = None


@attrs.frozen
class Outer:
    play_id: str
    count: int
    ratio: float
    done: bool
    colour: Colour
    mood: Mood
    inner: Inner
    items: list[Inner]
    extra: Any = None
    nothing: str | None = None


def test_models_render_as_camel_case_json() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    value = Outer(
        "p1",
        3,
        0.5,
        True,
        Colour.RED,
        Mood.CALM,
        Inner(moment, ("a", "b"), ended_at=moment),
        [Inner(moment.astimezone(timezone(timedelta(hours=2))))],
        extra={"k": [moment, {"deep": Colour.RED}], 7: frozenset({1})},
    )
    assert api.unstructure(value) == {
        "playId": "p1",
        "count": 3,
        "ratio": 0.5,
        "done": True,
        "colour": "red",
        "mood": "calm",
        "inner": {
            "seenAt": "2026-01-02T03:04:05.678000Z",
            "tags": ["a", "b"],
            "endedAt": "2026-01-02T03:04:05.678000Z",
        },
        "items": [{"seenAt": "2026-01-02T05:04:05.678000+02:00", "tags": [], "endedAt": None}],
        "extra": {"k": ["2026-01-02T03:04:05.678000Z", {"deep": "red"}], "7": [1]},
        "nothing": None,
    }


def test_rendered_models_encode_to_the_json_clients_read() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    value = Outer("p1", 3, 0.5, False, Colour.RED, Mood.CALM, Inner(moment), [])
    assert json.loads(json_bytes(api.unstructure(value))) == {
        "playId": "p1",
        "count": 3,
        "ratio": 0.5,
        "done": False,
        "colour": "red",
        "mood": "calm",
        "inner": {"seenAt": "2026-01-02T03:04:05Z", "tags": [], "endedAt": None},
        "items": [],
        "extra": None,
        "nothing": None,
    }


def test_plain_json_passes_through_unchanged() -> None:
    data = {"a": [1, 2.5, "x", None, True, {"b": []}]}
    assert api.unstructure(data) == data
    assert api.unstructure("text") == "text"
    assert api.unstructure(None) is None
