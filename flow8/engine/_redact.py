"""Masking a play's secrets in everything it records and reports.

A play learns secrets as it runs: the value of a KV entry marked secret that it reads (with
``kv-get``, ``$kv()`` or ``$kvGlobal()``) or writes as secret (``kv-set`` with ``secret``),
and later the credentials its steps apply. From then on every text it stores or publishes —
layer arguments, outputs and errors, its own output and error, events — shows ``***``
where a secret's text appears. The real values stay in memory for the steps that use them
and, for a layer whose record was masked, in its encrypted ``sealed`` field, so that a play
resumed after a crash or a wait gives later steps the real value, not ``***``.

Only texts of at least ``MIN_SECRET_LENGTH`` characters are masked: a shorter one ("1",
"on") occurs everywhere by chance, and masking it would garble everything while hiding
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MASK = "***"
MIN_SECRET_LENGTH = 4


class Redactor:
    """The secrets one play knows, and masking with them. Cheap when it knows none."""

    __slots__ = ("_secrets", "dirty")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
        self.dirty = False  # learned a secret since `unsaved()` last said so

    def __bool__(self) -> bool:
        return bool(self._secrets)

    @property
    def secrets(self) -> list[str]:
        """Every secret known, longest first (how they are applied)."""
        return sorted(self._secrets, key=lambda s: (-len(s), s))

    def unsaved(self) -> bool:
        """Whether a secret was learned since the last call (and so must be stored)."""
        learned, self.dirty = self.dirty, False
        return learned

    def learn(self, value: Any) -> None:
        """Remember every text inside ``value`` (strings, and numbers as they are written)."""
        for text in _texts(value):
            if len(text) >= MIN_SECRET_LENGTH and text not in self._secrets:
                self._secrets.add(text)
                self.dirty = True

    def text(self, text: str) -> str:
        if not self._secrets:
            return text
        # Longest first, so a secret that contains another is masked whole.
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def mask(self, value: Any) -> Any:
        """``value`` with every secret text masked; the very same object when nothing
        changed (so callers can tell, and nothing is copied in the common case)."""
        if not self._secrets:
            return value
        return _mask(value, self)


def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        yield str(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _texts(k)
            yield from _texts(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _texts(v)


def _mask(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor.text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        text = str(value)
        return MASK if redactor.text(text) != text else value
    if isinstance(value, dict):
        out = {redactor.text(k): _mask(v, redactor) for k, v in value.items()}
        same = len(out) == len(value) and all(k in value and out[k] is value[k] for k in out)
        return value if same else out
    if isinstance(value, list):
        items = [_mask(v, redactor) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value
