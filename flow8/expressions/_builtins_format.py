"""Formatting and date built-ins, bounded.

Their pictures are parsed in pure Python with nested loops (``$formatInteger`` inserts
grouping separators one at a time: quadratic), and numbers in them become exponents
(``[Y,1000000000]`` computes ``10 ** 1000000000``): pictures, widths and the text parsed
are at most ``MAX_PICTURE`` characters. ``$formatInteger`` writes roman numerals by
recursion, one level per thousand: here in a loop, refused past the string cap.
``$toMillis`` with a picture matched the timestamp with a regex built from the picture on
Python's backtracking engine: adjacent digit fields (``[f][f][f]...``) made that
exponential. Here the same regex runs on RE2 (linear time); the rest is the library's.
``$formatNumber``'s exponent separator is spliced into a regex unescaped: it must be one
character.
"""

from __future__ import annotations

import contextlib
import datetime
from typing import Any

import re2  # type: ignore[import-untyped]
from jsonata import constants, jexception
from jsonata.datetimeutils import DateTimeUtils
from jsonata.functions import Functions

from ._budget import LimitHit, current
from ._explain import shown
from ._limits import MAX_PICTURE


def _short(what: str, text: Any, noun: str = "picture") -> None:
    if isinstance(text, str) and len(text) > MAX_PICTURE:
        raise LimitHit(
            "picture",
            f"{what} {noun} of {len(text)} characters is longer than the {MAX_PICTURE} allowed",
        )


def _datetime_picture(what: str, picture: Any) -> None:
    """Refuse pictures whose widths or digit counts are past ``MAX_PICTURE``."""
    if not isinstance(picture, str):
        return
    _short(what, picture)
    for part in DateTimeUtils._analyse_datetime_picture(picture).parts:
        numbers = [n for n in (part.width or ()) if isinstance(n, int)]
        if part.integerFormat is not None:
            numbers.append(part.integerFormat.mandatoryDigits)
        if any(abs(n) > MAX_PICTURE for n in numbers):
            raise LimitHit(
                "picture", f"{what} picture asks for a width over the {MAX_PICTURE} allowed"
            )


def from_millis(millis: Any = None, picture: Any = None, timezone: Any = None) -> Any:
    if millis is not None:
        _datetime_picture("$fromMillis", picture)
    return Functions.datetime_from_millis(millis, picture, timezone)


def now(picture: Any = None, timezone: Any = None) -> Any:
    _datetime_picture("$now", picture)
    return Functions.now(picture, timezone)


def format_integer(value: Any = None, picture: Any = None) -> Any:
    if value is None:
        return None
    _short("$formatInteger", picture)
    spec = DateTimeUtils._analyse_integer_picture(picture)
    number = int(value)
    if spec.primary != DateTimeUtils.Formats.ROMAN:
        return DateTimeUtils._format_integer(number, spec)
    current().string("$formatInteger", abs(number) // 1000 + 16)
    roman = []
    rest = abs(number)
    for numeral in DateTimeUtils._roman_numerals:  # greedy, as the library's recursion
        count, rest = divmod(rest, numeral.get_value())
        roman.append(numeral.get_letters() * count)
    text = "".join(roman)
    if spec.case_type == DateTimeUtils.TCase.UPPER:
        text = text.upper()
    return "-" + text if number < 0 else text


def parse_integer(value: Any = None, picture: Any = None) -> Any:
    if value is not None:
        _short("$parseInteger", picture)
        _short("$parseInteger", value, "text")
    return Functions.parse_integer(value, picture)


_FORMAT_OPTIONS = (
    "decimal-separator",
    "grouping-separator",
    "exponent-separator",
    "minus-sign",
    "infinity",
    "NaN",
    "percent",
    "per-mille",
    "zero-digit",
    "digit",
    "pattern-separator",
)


def format_number(value: Any = None, picture: Any = None, options: Any = None) -> Any:
    _short("$formatNumber", picture)
    if isinstance(options, dict):
        for name in _FORMAT_OPTIONS:
            _short("$formatNumber", options.get(name), f"option {name!r}")
        separator = options.get("exponent-separator")
        if isinstance(separator, str) and len(separator) != 1:
            raise jexception.JException(
                "Argument 3 of function $formatNumber is invalid. The value of the "
                "exponent-separator property must be a single character",
                -1,
            )
    return Functions.format_number(value, picture, options)


def to_millis(timestamp: Any = None, picture: Any = None) -> Any:
    if timestamp is None:
        return None
    _short("$toMillis", timestamp, "timestamp")
    if picture is None:
        return Functions.datetime_to_millis(timestamp, picture)
    _short("$toMillis", picture)
    return _parse_datetime(timestamp, picture)


_IGNORE_CASE = re2.Options()
_IGNORE_CASE.log_errors = False
_IGNORE_CASE.case_sensitive = False


# Adapted from jsonata-python 0.7.1 (Apache License 2.0), DateTimeUtils.parse_datetime:
# only the regex engine differs (RE2; Python's "$" also matches before a final newline).
def _parse_datetime(timestamp: str, picture: str) -> Any:
    format_spec = DateTimeUtils._analyse_datetime_picture(picture)
    match_spec = DateTimeUtils._generate_regex(format_spec)
    full_regex = "^" + "".join("(" + part.regex + ")" for part in match_spec.parts) + "\n?$"
    try:
        pattern = re2.compile(full_regex, _IGNORE_CASE)
    except re2.error as e:  # a message for a user: no Python repr, no re2 internals
        raise jexception.JException(
            "Argument 2 of function $toMillis is not a picture a timestamp can be parsed "
            f"with: {shown(picture) or 'a long string'}",
            -1,
        ) from e
    match = pattern.search(timestamp)
    if match is None:
        return None
    dm_a, dm_b, dm_c, dm_d, tm_a, tm_b = 161, 130, 84, 72, 23, 47
    components: dict[str, Any] = {}
    for i in range(1, len(match.groups()) + 1):
        mpart = match_spec.parts[i - 1]
        with contextlib.suppress(NotImplementedError):  # literal parts parse to nothing
            components[mpart.component] = mpart.parse(match.group(i))
    if not components:
        return None
    mask = 0
    for part in "YXMxWwdD":
        mask <<= 1
        if components.get(part) is not None:
            mask += 1
    date_a = DateTimeUtils._is_type(dm_a, mask)
    date_b = not date_a and DateTimeUtils._is_type(dm_b, mask)
    date_c = DateTimeUtils._is_type(dm_c, mask)
    date_d = not date_c and DateTimeUtils._is_type(dm_d, mask)
    mask = 0
    for part in "PHhmsf":
        mask <<= 1
        if components.get(part) is not None:
            mask += 1
    time_a = DateTimeUtils._is_type(tm_a, mask)
    time_b = not time_a and DateTimeUtils._is_type(tm_b, mask)
    date_comps = "YB" if date_b else "XxwF" if date_c else "XWF" if date_d else "YMD"
    time_comps = "Phmsf" if time_b else "Hmsf"
    now = datetime.datetime.utcnow()
    start_specified = False
    end_specified = False
    for part in date_comps + time_comps:
        if components.get(part) is None:
            if start_specified:
                components[part] = 1 if "MDd".find(part) != -1 else 0
                end_specified = True
            else:
                components[part] = int(float(DateTimeUtils._get_datetime_fragment(now, part)))
        else:
            start_specified = True
            if end_specified:
                raise RuntimeError(constants.Constants.ERR_MSG_MISSING_FORMAT)
    if components.get("M") is not None and components["M"] > 0:
        components["M"] = components["M"] - 1
    else:
        components["M"] = 0
    if date_b:
        first_jan = datetime.datetime(components["Y"], 1, 1, 0, 0)
        first_jan = first_jan + datetime.timedelta(days=components["d"] - 1)
        components["M"] = first_jan.month - 1
        components["D"] = first_jan.day
    if date_c or date_d:
        raise RuntimeError(constants.Constants.ERR_MSG_MISSING_FORMAT)
    if time_b:
        components["H"] = 0 if components["h"] == 12 else components["h"]
        if components["P"] == 1:
            components["H"] = components["H"] + 12
    cal = datetime.datetime(
        components["Y"],
        components["M"] + 1,
        components["D"],
        components["H"],
        components["m"],
        components["s"],
        components["f"] * 1000,
        datetime.UTC,
    )
    millis = cal.timestamp() * 1000
    if components.get("Z") is not None:
        millis -= components["Z"] * 60 * 1000
    elif components.get("z") is not None:
        millis -= components["z"] * 60 * 1000
    return int(millis)
