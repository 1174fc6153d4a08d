"""Time-ordered unique document ids (ULID layout: 48-bit milliseconds + 80 random bits)."""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: sorts like the integer
# Every pair of digits, indexed by 10 bits: an id is written 10 bits at a time. (base64's
# b32encode is pure Python in 3.11 and cost more than the rest of new_id.)
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_SHIFTS = tuple(range(120, -1, -10))
_lock = threading.Lock()
_last_ms = -1
_last_rand = 0


def new_id() -> str:
    """Return a 26-character id that sorts after every id this process made before it.

    Within one millisecond the random part is incremented rather than redrawn, so ids made in a
    burst still sort in creation order (the monotonic ULID rule).
    """
    global _last_ms, _last_rand
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            rand = (_last_rand + 1) & ((1 << 80) - 1)
            if rand == 0:  # 2**80 ids in one millisecond: borrow the next millisecond
                ms += 1
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _last_ms, _last_rand = ms, rand
    return encode(ms, rand)


def encode(ms: int, rand: int) -> str:
    """The 26 digits of (48-bit ms, 80-bit rand): 130 bits, the first 2 always zero."""
    value = (ms << 80) | rand
    return "".join([_PAIRS[(value >> shift) & 0x3FF] for shift in _SHIFTS])
