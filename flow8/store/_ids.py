"""Time-ordered unique document ids (ULID layout: 48-bit milliseconds + 80 random bits)."""

from __future__ import annotations

import base64
import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: sorts like the integer
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())
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
    # 160 bits -> 32 base32 digits, of which the first 6 are always zero.
    raw = base64.b32encode(((ms << 80) | rand).to_bytes(20, "big"))
    return raw[6:].translate(_TO_CROCKFORD).decode()
