"""argon2id password hashing off the event loop, with OWASP parameters and rehash-on-login."""

from __future__ import annotations

import attrs
import trio
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@attrs.frozen
class Argon2Params:
    """OWASP's argon2id recommendation: 19 MiB, 2 iterations, 1 lane."""

    memory_kib: int = 19 * 1024
    iterations: int = 2
    parallelism: int = 1


def _hasher(params: Argon2Params) -> PasswordHasher:
    return PasswordHasher(
        time_cost=params.iterations,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )


@attrs.define
class Passwords:
    """Hash and verify in worker threads; a small limiter bounds the memory each hash holds
    (19 MiB) and keeps login floods from starving the event loop's threads."""

    params: Argon2Params = attrs.field(factory=Argon2Params)
    limiter: trio.CapacityLimiter = attrs.field(factory=lambda: trio.CapacityLimiter(2))
    _hasher: PasswordHasher = attrs.field(init=False)
    _dummy: str | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        self._hasher = _hasher(self.params)

    async def hash(self, password: str) -> str:
        return await trio.to_thread.run_sync(self._hasher.hash, password, limiter=self.limiter)

    async def verify(self, stored: str, password: str) -> bool:
        def _verify() -> bool:
            try:
                return self._hasher.verify(stored, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        return await trio.to_thread.run_sync(_verify, limiter=self.limiter)

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True

    async def burn(self, password: str) -> None:
        """Spend the time a real verification would, for a user who does not exist, so
        timing does not tell unknown accounts from wrong passwords."""
        if self._dummy is None:
            self._dummy = await self.hash("flow8-dummy-password")
        await self.verify(self._dummy, password)
