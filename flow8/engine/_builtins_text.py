"""String built-ins, bounded: each refuses a result past the string cap or the memory budget
before building it, works on long strings in pieces (one C-level call each) with the
deadline checked between them, and stops regex work at ``MAX_ITEMS`` matches.

Every function here gives the library's result (``jsonata.functions.Functions``), the
same value for the same arguments; the tests hold each against the library.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import itertools
import math
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from jsonata import jexception
from jsonata.functions import Functions
from jsonata.utils import Utils

from ._budget import Budget, LimitHit, current
from ._jsontext import jsonata_string
from ._limits import MAX_ITEMS, STRING_CHUNK

# quote/unquote run in pure Python (up to 0.4 us a character for unquote): a piece of 16k
# characters takes ~6 ms, after which the thread yields the GIL (Budget.tick).
_URL_CHUNK = 16_384
# re.sub of the whitespace pattern costs ~22 ns a character on whitespace-dense text.
_TRIM_CHUNK = 100_000
_TICK = 256


def _utf8_bytes(text: str) -> int:
    """re2 encodes the whole subject to UTF-8 on every call: the bytes it allocates."""
    return len(text) if text.isascii() else 4 * len(text)


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
            budget.charge(_utf8_bytes(string))
    return Functions.contains(string, token)


def _per_piece(
    what: str, library: Callable[[Any], Any], method: Callable[[str], str]
) -> Callable[[Any], Any]:
    """A per-character string method run ``STRING_CHUNK`` characters at a time (case
    mappings are per character, so the pieces map independently)."""

    def run(string: Any = None) -> Any:
        if not isinstance(string, str) or len(string) <= STRING_CHUNK:
            return library(string)
        budget = current()
        budget.work(len(string))
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
    budget.charge(_utf8_bytes(string))
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
    budget.charge(_utf8_bytes(string))
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


# -- $replace ---------------------------------------------------------------------------


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
    budget.charge(_utf8_bytes(text))
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


# -- base64 and URLs --------------------------------------------------------------------


def _utf8_pieces(string: str, budget: Budget) -> bytes:
    pieces = []
    for start in range(0, len(string), STRING_CHUNK):
        budget.tick()
        pieces.append(string[start : start + STRING_CHUNK].encode("utf-8"))
    return b"".join(pieces)


def base64encode(string: Any = None) -> Any:
    if not isinstance(string, str) or len(string) <= STRING_CHUNK:
        return Functions.base64encode(string)
    budget = current()
    budget.work(len(string))
    try:
        data = _utf8_pieces(string, budget)
    except UnicodeEncodeError:
        return None  # as the library: any failure is undefined
    budget.charge(len(data))
    budget.string("$base64encode", 4 * math.ceil(len(data) / 3))
    step = 3 * (STRING_CHUNK // 4)  # whole 3-byte groups encode independently
    out = []
    for start in range(0, len(data), step):
        budget.tick()
        out.append(base64.b64encode(data[start : start + step]))
    return b"".join(out).decode("ascii")


_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_JUNK = bytes(b for b in range(256) if b not in _B64_ALPHABET + b"=")


def base64decode(string: Any = None) -> Any:
    """$base64decode. Characters outside the alphabet are skipped by the decoder, so they
    are dropped first; the rest decodes four characters at a time. Text with "=" before
    its end (where the decoder's handling depends on position) is decoded in one call, so
    it may be at most ``STRING_CHUNK`` characters."""
    if not isinstance(string, str) or len(string) <= STRING_CHUNK:
        return Functions.base64decode(string)
    budget = current()
    budget.work(len(string))
    try:
        raw = _utf8_pieces(string, budget)
    except UnicodeEncodeError:
        return None
    budget.charge(2 * len(raw))
    clean = b"".join(
        raw[start : start + STRING_CHUNK].translate(None, _B64_JUNK)
        for start in range(0, len(raw), STRING_CHUNK)
    )
    body = clean.rstrip(b"=")
    if b"=" in body:
        if len(clean) > STRING_CHUNK:
            raise _too_irregular(len(string))
        return Functions.base64decode(string)
    step = 4 * (STRING_CHUNK // 4)
    decoder = codecs.getincrementaldecoder("utf-8")()
    out = []
    try:
        whole = len(body) - len(body) % 4
        for start in range(0, whole, step):
            budget.tick()
            out.append(decoder.decode(binascii.a2b_base64(body[start : min(start + step, whole)])))
        out.append(decoder.decode(binascii.a2b_base64(clean[whole:]), final=True))
    except (binascii.Error, UnicodeDecodeError):
        return None
    return "".join(out)


def _too_irregular(length: int) -> Exception:
    return LimitHit(
        "string",
        f"$base64decode of {length} characters with '=' before the end is longer than the "
        f"{STRING_CHUNK} allowed",
    )


def _quoter(what: str, library: Callable[[Any], Any], safe: str) -> Callable[[Any], Any]:
    """URL encoding is per character (each is encoded to UTF-8, then byte by byte), so
    pieces encode independently; a character that cannot be encoded raises the error the
    whole string would."""

    def run(string: Any = None) -> Any:
        if not isinstance(string, str) or len(string) <= _URL_CHUNK:
            return library(string)
        budget = current()
        budget.work(len(string))
        pieces = []
        total = 0
        for start in range(0, len(string), _URL_CHUNK):
            budget.tick()
            try:
                piece = urllib.parse.quote(string[start : start + _URL_CHUNK], safe=safe)
            except UnicodeEncodeError as e:
                raise UnicodeEncodeError(
                    e.encoding, string, e.start + start, e.end + start, e.reason
                ) from None
            total += len(piece)
            budget.string(what, total)
            pieces.append(piece)
        return "".join(pieces)

    return run


encode_url_component = _quoter("$encodeUrlComponent", Functions.encode_url_component, "~()*!.'")
encode_url = _quoter("$encodeUrl", Functions.encode_url, "~@#$&()*!+=:;,.?/'")

_HEX = frozenset("0123456789abcdefABCDEF")


def _safe_cut(string: str, at: int) -> int:
    """A position at or just after ``at`` where decoding can stop and start again: not
    inside a %XX escape, and before a literal character or an escape that starts a UTF-8
    character. Sixteen characters without one are five continuation bytes in a row, which
    no UTF-8 text has: the input fails to decode wherever it is cut."""
    end = at + 16
    if end >= len(string):
        return len(string)  # the rest in one piece
    first = None
    for cut in range(at, end):
        if string[cut - 1] == "%" or (
            string[cut - 2] == "%" and string[cut - 1] in _HEX and string[cut] in _HEX
        ):
            continue  # inside an escape
        if first is None:
            first = cut
        if string[cut] != "%":
            return cut
        escape = string[cut + 1 : cut + 3]
        if len(escape) < 2 or escape[0] not in _HEX or escape[1] not in _HEX:
            return cut  # a "%" without two hex digits is literal
        if not 0x80 <= int(escape, 16) < 0xC0:
            return cut  # an escape that starts a character
    return len(string) if first is None else first


def _unquoter(library: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """URL decoding in pieces cut between whole characters (``_safe_cut``)."""

    def run(string: Any = None) -> Any:
        if not isinstance(string, str) or len(string) <= _URL_CHUNK or "%" not in string:
            return library(string)
        budget = current()
        budget.work(len(string))
        pieces = []
        start = 0
        while start < len(string):
            budget.tick()
            cut = len(string)
            if start + _URL_CHUNK < len(string):
                cut = _safe_cut(string, start + _URL_CHUNK)
            pieces.append(urllib.parse.unquote(string[start:cut], errors="strict"))
            start = cut
        return "".join(pieces)

    return run


decode_url_component = _unquoter(Functions.decode_url_component)
decode_url = _unquoter(Functions.decode_url)
