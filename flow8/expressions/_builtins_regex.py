"""Regex built-ins, bounded: ``$match`` and ``$replace`` made one match at a time (re2's
``finditer``, ``sub`` and ``split`` are pure Python loops over C++ matches, 3-5 us each),
at most ``MAX_ITEMS`` matches or replacements, each replacement measured before it is
built; a literal ``$replace`` counts its occurrences before ``str.replace`` makes them
(the library copied the rest of the string at every occurrence: quadratic).

Every function here gives the library's result (``jsonata.functions.Functions``); the
tests hold each against it.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable
from typing import Any

from jsonata import jexception
from jsonata.functions import Functions
from jsonata.utils import Utils

from ._budget import Budget, current
from ._limits import MAX_ITEMS

_TICK = 256


def utf8_bytes(text: str) -> int:
    """re2 encodes the whole subject to UTF-8 on every call: the bytes it allocates."""
    return len(text) if text.isascii() else 4 * len(text)


def match(string: Any = None, regex: Any = None, limit: Any = None) -> Any:
    """$match, one match at a time, at most ``MAX_ITEMS`` of them."""
    if (
        not isinstance(string, str)
        or not Functions.is_regex(regex)
        or (limit is not None and limit < 0)
    ):
        return Functions.match_(string, regex, limit)
    budget = current()
    budget.work(len(string))
    budget.charge(utf8_bytes(string))
    result = Utils.create_sequence()
    matches: Any = Functions.evaluate_matcher(regex, string)
    if limit is not None:
        matches = itertools.islice(matches, math.ceil(limit))
    for found in matches:
        if len(result) >= MAX_ITEMS:
            budget.items("$match", len(result) + 1, "matches")
        if len(result) % _TICK == 0:
            budget.tick()
        result.append({"match": found.match, "index": found.index, "groups": found.groups})
        budget.charge(400 + 2 * len(found.match))
    return result


def replace(
    string: Any = None, pattern: Any = None, replacement: Any = None, limit: Any = None
) -> Any:
    if (
        not isinstance(string, str)
        or pattern is None
        or (isinstance(pattern, str) and not pattern)
        or (limit is not None and limit < 0)
    ):
        return Functions.replace(string, pattern, replacement, limit)
    budget = current()
    budget.work(len(string))
    if isinstance(pattern, str):
        return _replace_text(string, pattern, replacement, limit, budget)
    if not Functions.is_regex(pattern):
        return Functions.replace(string, pattern, replacement, limit)
    if limit is None:
        if isinstance(replacement, str):
            template = Functions.safe_replacement(replacement)
            return _sub(pattern, template, string, 0, budget)[0]
        return _sub(pattern, _replacer(replacement), string, 0, budget)[0]
    # With a limit the library replaces the first match again and again, each time in the
    # result of the last (so a replacement can itself be matched): at most ceil(limit)
    # times, and once a round changes nothing no later round will.
    rounds = math.ceil(limit)
    result = string
    if rounds > 0:
        template = Functions.safe_replacement(str(replacement))
        for _ in range(rounds):
            budget.tick()
            after, count = _sub(pattern, template, result, 1, budget)
            if count == 0 or after == result:
                break
            result = after
    return result


def _replace_text(string: str, pattern: str, replacement: Any, limit: Any, budget: Budget) -> str:
    """A literal pattern: every occurrence gets the same text, so ``str.replace`` gives the
    library's result (which copies the rest of the string at every occurrence)."""
    count = string.count(pattern)
    if limit is not None:
        count = min(count, math.ceil(limit))
    if count == 0:
        return string
    text = _expand_literal(replacement, pattern) if isinstance(replacement, str) else None
    if text is None:
        text = str(replacement)
    length = len(string) + count * (len(text) - len(pattern))
    budget.string("$replace", length)
    budget.items("$replace", count, "replacements")
    return string.replace(pattern, text, count)


def _expand_literal(replacement: str, matched: str) -> str:
    """The library's replacement text for a literal pattern (a match without groups):
    ``$$`` is ``$``, ``$0`` the match, any other ``$`` itself."""
    parts = []
    position = 0
    while position < len(replacement):
        index = replacement.find("$", position)
        if index == -1:
            parts.append(replacement[position:])
            break
        parts.append(replacement[position:index])
        position = index + 1
        if position < len(replacement):
            follower = replacement[position]
            if follower == "$":
                parts.append("$")
                position += 1
            elif follower == "0":
                parts.append(matched)
                position += 1
            else:
                parts.append("$")
        else:
            parts.append("$")
    return "".join(parts)


def _replacer(function: Any) -> Callable[[Any], str]:
    def replace_fn(found: Any) -> str:
        res = Functions.func_apply(function, [Functions.to_jsonata_match(found)])
        if isinstance(res, str):
            return res
        raise jexception.JException("D3012", -1)

    return replace_fn


def _sub(pattern: Any, repl: Any, text: str, count: int, budget: Budget) -> tuple[str, int]:
    """re2's ``subn`` made one match at a time: refuses past ``MAX_ITEMS`` replacements or
    a result past the cap, and measures each replacement before building it."""
    budget.charge(utf8_bytes(text))
    matches: Any = pattern.finditer(text)
    if count > 0:
        matches = itertools.islice(matches, count)
    pieces = []
    end = 0
    total = 0
    made = 0
    for found in matches:
        made += 1
        if made % _TICK == 0:
            budget.tick()
        if made > MAX_ITEMS:
            budget.items("$replace", made, "replacements")
        head = text[end : found.start()]
        if callable(repl):
            rep = repl(found)
        else:
            budget.string("$replace", total + len(head) + _expansion_bound(found, repl))
            rep = found.expand(repl)
        total += len(head) + len(rep)
        budget.string("$replace", total)
        pieces.append(head)
        pieces.append(rep)
        end = found.end()
    tail = text[end:]
    budget.string("$replace", total + len(tail))
    pieces.append(tail)
    return "".join(pieces), made


def _expansion_bound(found: Any, template: str) -> int:
    """At most how long ``found.expand(template)`` is: literal parts are unescaped (at most
    4 characters each), group references are the groups' text."""
    try:
        pieces = type(found)._split(template)
    except AttributeError:  # another re2 version: every backslash may be a reference
        return 4 * len(template) + template.count("\\") * len(found.group(0))
    length = 0
    for index, piece in enumerate(pieces):
        if not index % 2:
            length += 4 * len(piece)
            continue
        group: Any = piece[1:] if len(piece) <= 3 else piece[3:-1]
        with contextlib.suppress(ValueError):
            group = int(group)
        with contextlib.suppress(IndexError, KeyError):  # expand() raises its own error
            length += len(found[group] or "")
    return length
