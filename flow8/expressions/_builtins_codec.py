"""Base64 and URL built-ins, bounded: they work on long strings in pieces that code
independently (whole characters; whole 3-byte groups for base64; URL escapes and UTF-8
characters kept whole when decoding), refuse a result past the string cap, and check the
deadline between pieces. Every function here gives the library's result.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import math
import urllib.parse
from collections.abc import Callable
from typing import Any

from jsonata.functions import Functions

from ._budget import Budget, LimitHit, current
from ._limits import STRING_CHUNK

# quote/unquote run in pure Python (up to 0.4 us a character for unquote): a piece of 16k
# characters takes ~6 ms, after which the thread yields the GIL (Budget.tick).
_URL_CHUNK = 16_384


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
