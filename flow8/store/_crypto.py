"""Field encryption: AES-256-GCM with a key ring.

A ciphertext is the text ``f8e1.<key id>.<base64url(nonce || ciphertext || tag)>``. The
associated data binds company, collection, document id and field, so a ciphertext copied to any
other place fails authentication instead of decrypting.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path
from typing import Literal

import attrs
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .exceptions import DecryptionFailed, KeyringError

PREFIX = "f8e1."
KEY_FILE = "encryption.key"
_KID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")

log = structlog.get_logger("flow8.store")


def aad(company_id: str, collection: str, doc_id: str, field: str) -> bytes:
    return "\x00".join((company_id, collection, doc_id, field)).encode()


def is_ciphertext(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


@attrs.frozen(repr=False)
class Keyring:
    """Ordered keys: the first encrypts, all decrypt. Never shows key material in repr."""

    keys: tuple[tuple[str, bytes], ...]

    def __attrs_post_init__(self) -> None:
        if not self.keys:
            raise KeyringError("the key ring is empty")
        seen = set()
        for kid, key in self.keys:
            if not _KID.match(kid):
                raise KeyringError(f"key id {kid!r} must match [A-Za-z0-9_-]{{1,32}}")
            if len(key) != 32:
                raise KeyringError(f"key {kid!r} is {len(key)} bytes; AES-256 needs 32")
            if kid in seen:
                raise KeyringError(f"key id {kid!r} appears twice")
            seen.add(kid)

    def __repr__(self) -> str:
        return f"Keyring(kids={[k for k, _ in self.keys]!r})"

    @property
    def primary_kid(self) -> str:
        return self.keys[0][0]

    @classmethod
    def parse(cls, value: str) -> Keyring:
        """Parse ``kid1:base64key,kid2:base64key`` (standard or url-safe base64)."""
        keys = []
        for n, item in enumerate(p.strip() for p in value.split(",")):
            if not item:
                continue
            kid, sep, b64 = item.partition(":")
            if not sep:
                raise KeyringError(f"FLOW8_ENCRYPTION_KEYS entry {n + 1} is not 'kid:base64key'")
            try:
                std = b64.strip().replace("-", "+").replace("_", "/")
                key = base64.b64decode(std, validate=True)
            except (binascii.Error, ValueError) as e:
                raise KeyringError(f"key {kid.strip()!r} is not valid base64") from e
            keys.append((kid.strip(), key))
        return cls(tuple(keys))

    @classmethod
    def generate(cls, kid: str = "k1") -> Keyring:
        return cls(((kid, AESGCM.generate_key(bit_length=256)),))

    def serialize(self) -> str:
        return ",".join(f"{kid}:{base64.b64encode(key).decode()}" for kid, key in self.keys)

    def kid_of(self, token: str) -> str:
        return token[len(PREFIX) :].split(".", 1)[0]

    def encrypt(self, plaintext: bytes, associated: bytes) -> str:
        kid, key = self.keys[0]
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, plaintext, associated)
        return f"{PREFIX}{kid}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, associated: bytes, where: str) -> bytes:
        if not is_ciphertext(token):
            raise DecryptionFailed(f"{where}: stored value is not a ciphertext")
        kid, _, body = token[len(PREFIX) :].partition(".")
        key = dict(self.keys).get(kid)
        if key is None:
            raise DecryptionFailed(f"{where}: encrypted with key {kid!r}, not in the key ring")
        try:
            raw = base64.urlsafe_b64decode(body)
            return AESGCM(key).decrypt(raw[:12], raw[12:], associated)
        except (InvalidTag, binascii.Error, ValueError) as e:
            raise DecryptionFailed(
                f"{where}: authentication failed (wrong key, or the ciphertext belongs to "
                "another company, collection, document or field)"
            ) from e


def load_keyring(
    env_value: str | None,
    data_dir: str | os.PathLike[str] | None,
    *,
    backend: Literal["sqlite", "mongo", "memory"] = "sqlite",
) -> Keyring:
    """Key ring from ``FLOW8_ENCRYPTION_KEYS``; else, for sqlite, a key file in ``data_dir``.

    The generated file holds one key, mode 0600; a warning says so, because losing the file
    loses every secret field. MongoDB deployments share keys across instances, so there a
    missing configuration is an error rather than a key generated on one machine. A memory
    store's data dies with it, so a key generated for it (and never written) loses nothing.
    """
    if env_value and env_value.strip():
        return Keyring.parse(env_value)
    if backend == "memory":
        return Keyring.generate()
    if backend == "mongo":
        raise KeyringError(
            "FLOW8_ENCRYPTION_KEYS is not set: a MongoDB store needs keys shared by every "
            "instance (format kid:base64key, 32-byte keys)"
        )
    if data_dir is None:
        raise KeyringError("FLOW8_ENCRYPTION_KEYS is not set and no data directory was given")
    path = Path(data_dir) / KEY_FILE
    try:
        if path.exists():
            return Keyring.parse(path.read_text())
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        ring = Keyring.generate()
        # Written whole to a file of our own, then linked into place: link fails if the
        # key file exists, so of processes starting at once (the workers of one serve) one
        # key wins, and nobody ever reads a key file that is still being written.
        draft = path.with_name(f".{KEY_FILE}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(ring.serialize() + "\n")
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(draft, path)
            except FileExistsError:  # another process won the race: use its key
                return Keyring.parse(path.read_text())
        finally:
            draft.unlink(missing_ok=True)
    except OSError as e:
        raise KeyringError(f"cannot use the key file {str(path)!r}: {e.strerror or e}") from e
    log.warning(
        "encryption_key_generated",
        path=str(path),
        hint="set FLOW8_ENCRYPTION_KEYS and keep a backup; losing this file loses all secrets",
    )
    return ring
