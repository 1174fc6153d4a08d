"""Random credentials and their stored digests.

Session tokens, invitation tokens and API keys carry 256 bits of randomness, so a plain SHA-256
digest is enough to store them: there is nothing to brute-force, and lookups stay one indexed
equality.
"""

from __future__ import annotations

import hashlib
import re
import secrets

API_KEY_PREFIX = "f8k_"
# A recognisable prefix lets secret scanners (and people) tell an invitation token apart.
INVITATION_PREFIX = "f8i_"
_API_KEY = re.compile(r"^f8k_([A-Za-z0-9]{8})_([A-Za-z0-9_-]{43})$")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def new_invitation_token() -> str:
    return f"{INVITATION_PREFIX}{secrets.token_urlsafe(32)}"


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def new_api_key() -> tuple[str, str]:
    """Returns (key, prefix); the prefix is shown in listings so users can tell keys apart."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    prefix = "".join(secrets.choice(alphabet) for _ in range(8))
    return f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}", prefix


def looks_like_api_key(value: str) -> bool:
    return _API_KEY.match(value) is not None
