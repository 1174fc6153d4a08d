"""String built-ins, bounded: each refuses a result past the string cap, the item cap or
the memory budget before building it, and works on long strings in pieces (one C-level
call each) with the deadline checked between them. ``$match``/``$replace`` are in
``_builtins_regex``, base64 and URL coding in ``_builtins_codec``.

Every function here gives the library's result (``jsonata.functions.Functions``), the
same value for the same arguments; the tests hold each against the library.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from jsonata.functions import Functions

from ._budget import current
from ._builtins_regex import utf8_bytes
from ._jsontext import jsonata_string
from ._limits import STRING_CHUNK

# re.sub of the whitespace pattern costs ~22 ns a character on whitespace-dense text.
_TRIM_CHUNK = 100_000
_TICK = 256


def string(arg: Any = None, prettify: Any = None) -> Any:
    return jsonata_string(arg, prettify, current())


def substring_before(string: Any = None, chars: Any = None) -> Any:
    if isinstance(string, str):
        current().work(len(string))
    return Functions.substring_before(string, chars)


def substring_after(string: Any = None, chars: Any = None) -> Any:
    if isinstance(string, str):
        current().work(len(string))
    return Functions.substring_after(string, chars)


def contains(string: Any = None, token: Any = None) -> Any:
    if isinstance(string, str):
        budget = current()
        budget.work(len(string))
        if Functions.is_regex(token):
            budget.charge(utf8_bytes(string))
    return Functions.contains(string, token)


def _per_piece(
    what: str, library: Callable[[Any], Any], method: Callable[[str], str]
) -> Callable[[Any], Any]:
    """A per-character string method run ``STRING_CHUNK`` characters at a time (case
    mappings are per character, so the pieces map independently)."""

    growers = _latin1_growers(method)

    def run(string: Any = None) -> Any:
        if not isinstance(string, str) or len(string) <= STRING_CHUNK:
            return library(string)
        budget = current()
        budget.work(len(string))
        exact = _latin1_result_length(string, growers)
        if exact is not None:
            budget.string(what, exact)
        pieces = []
        total = 0
        for start in range(0, len(string), STRING_CHUNK):
            budget.tick()
            piece = method(string[start : start + STRING_CHUNK])
            total += len(piece)
            budget.string(what, total)
            pieces.append(piece)
        return "".join(pieces)

    return run


def _latin1_growers(method: Callable[[str], str]) -> dict[int, int]:
    """The Latin-1 characters whose mapping is longer than one character, with how many
    characters each adds (for upper and casefold: only ß, which becomes SS / ss)."""
    grown = {code: len(method(chr(code))) - 1 for code in range(256)}
    return {code: extra for code, extra in grown.items() if extra}


def _latin1_result_length(string: str, growers: dict[int, int]) -> int | None:
    """The mapped length of a Latin-1 string, known before mapping it (encoding such a
    string is a copy, counting a byte a scan: 12 ms for 10M characters, where mapping the
    first half of ten million ß took 260 ms and met the time limit before the string cap);
    None for wider text, which is refused piece by piece."""
    if string.isascii():
        return len(string)
    try:
        raw = string.encode("latin-1")
    except UnicodeEncodeError:
        return None
    return len(string) + sum(raw.count(code) * extra for code, extra in growers.items())


lowercase = _per_piece("$lowercase", Functions.lowercase, str.casefold)
uppercase = _per_piece("$uppercase", Functions.uppercase, str.upper)

_WHITESPACE = re.compile("[ \t\n\r]+")


def trim(string: Any = None) -> Any:
    """$trim: runs of space, tab, CR and LF become one space, then the ends are stripped.
    In pieces, a run that spans two pieces leaves a space at the end of one and the start
    of the next: the second is dropped."""
    if not isinstance(string, str) or len(string) <= _TRIM_CHUNK:
        return Functions.trim(string)
    budget = current()
    budget.work(len(string))
    pieces = []
    ends_in_space = False
    for start in range(0, len(string), _TRIM_CHUNK):
        budget.tick()
        piece = _WHITESPACE.sub(" ", string[start : start + _TRIM_CHUNK])
        if ends_in_space and piece.startswith(" "):
            piece = piece[1:]
        if piece:
            pieces.append(piece)
            ends_in_space = piece.endswith(" ")
    result = "".join(pieces)
    if result.startswith(" "):
        result = result[1:]
    if result.endswith(" "):
        result = result[:-1]
    return result


def pad(string: Any = None, width: Any = None, char: Any = None) -> Any:
    if (
        isinstance(string, str)
        and isinstance(width, int | float)
        and not isinstance(width, bool)
        and math.isfinite(width)
    ):
        current().string("$pad", max(len(string), int(abs(width))))
    return Functions.pad(string, width, char)


def join(strs: Any = None, separator: Any = None) -> Any:
    """$join, refusing a result over the cap before building it; a long array is joined
    ``ITEM_CHUNK`` strings at a time."""
    if not isinstance(strs, list) or not all(isinstance(s, str) for s in strs):
        return Functions.join(strs, separator)
    budget = current()
    sep = separator if isinstance(separator, str) else ""
    step = 50_000
    length = len(sep) * max(0, len(strs) - 1)
    for start in range(0, len(strs), step):
        budget.tick()
        length += sum(map(len, strs[start : start + step]))
    budget.string("$join", length)
    budget.work(length)
    if len(strs) <= step:
        return sep.join(strs)
    parts = []
    for start in range(0, len(strs), step):
        budget.tick()
        parts.append(sep.join(strs[start : start + step]))
    return sep.join(parts)


def split(string: Any = None, pattern: Any = None, limit: Any = None) -> Any:
    """$split, counting the pieces before building them."""
    if not isinstance(string, str) or (limit is not None and int(limit) <= 0):
        return Functions.split(string, pattern, limit)
    budget = current()
    budget.work(len(string))
    most = None if limit is None else int(limit)
    if isinstance(pattern, str):
        if not pattern:  # into characters
            count = len(string) if most is None else min(len(string), most)
            budget.items("$split", count)
            return list(string[:count])
        count = string.count(pattern) + 1
        if most is not None and most < count:
            budget.items("$split", most)
            return string.split(pattern, most)[:most]
        budget.items("$split", count)
        budget.charge(len(string) + 50 * count)
        return string.split(pattern, -1)
    if not Functions.is_regex(pattern):
        return Functions.split(string, pattern, limit)
    # A regex: re2's split (the text between matches, then each match's groups), made
    # one match at a time.
    budget.charge(utf8_bytes(string))
    groups = range(1, pattern.groups + 1)
    pieces: list[Any] = []
    end = 0
    for match in pattern.finditer(string):
        pieces.append(string[end : match.start()])
        pieces.extend(match[group] for group in groups)
        end = match.end()
        if most is not None and len(pieces) >= most:
            break
        if len(pieces) % _TICK == 0:
            budget.tick()
        budget.items("$split", len(pieces) + 1)
    pieces.append(string[end:])
    if most is not None and most < len(pieces):
        pieces = pieces[:most]
    budget.charge(len(string) + 50 * len(pieces))
    return pieces
