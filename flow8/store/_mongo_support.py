"""MongoDB backend support: error mapping, URL redaction, datetime fix-up, pipeline lanes."""

from __future__ import annotations

import collections
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs

from ._catalog import CollectionSpec
from ._ops import Pending, WriteOp
from .exceptions import (
    DuplicateKey,
    InvalidDocument,
    StoreError,
    StoreUnavailable,
    UpdateFailed,
)

_AUTH_CODES = frozenset({13, 18})  # Unauthorized, AuthenticationFailed
_TOO_LARGE = frozenset({10334, 17419})  # BSONObjectTooLarge, document too large after update
# BadValue, FailedToParse, TypeMismatch, ImmutableField, ConflictingUpdateOperators
_UPDATE_CODES = frozenset({2, 9, 14, 66, 40})
# Up to the last "@": a password with an unescaped "@" or "/" (the very mistake pymongo
# reports as an invalid URL) must not show through in part.
_CREDENTIALS = re.compile(r"^(mongodb(?:\+srv)?://).*@")


def redact_url(url: str) -> str:
    return _CREDENTIALS.sub(r"\1***@", url)


def aware(value: Any) -> Any:
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, dict):
        return {k: aware(v) for k, v in value.items()}
    if isinstance(value, list):
        return [aware(v) for v in value]
    return value


def map_error(err: Exception, spec: CollectionSpec | None, where: str) -> StoreError:
    from pymongo import errors as pe

    name = spec.name if spec else "?"
    if isinstance(err, pe.DuplicateKeyError):
        return DuplicateKey(name, "?")  # index resolved by the caller, which knows the doc
    if isinstance(err, pe.ConnectionFailure | pe.ServerSelectionTimeoutError):
        return StoreUnavailable(f"{where}: MongoDB unreachable: {type(err).__name__}")
    if isinstance(err, pe.DocumentTooLarge):
        return InvalidDocument(f"{name}: document is larger than 16 MB")
    if isinstance(err, pe.WriteError | pe.OperationFailure):
        code = getattr(err, "code", None)
        if code in _AUTH_CODES:
            return StoreUnavailable(f"{where}: MongoDB refused the credentials ({code})")
        if code in _TOO_LARGE:
            return InvalidDocument(f"{name}: document is larger than 16 MB")
        if isinstance(err, pe.WriteError) or code in _UPDATE_CODES:
            return UpdateFailed(f"{name}: MongoDB refused the update: {err}")
        return StoreError(f"{name}: MongoDB refused {where}: {err}")
    if isinstance(err, TypeError | ValueError | AttributeError):
        # mongomock reports an update that cannot apply ($inc on a string) this way
        return UpdateFailed(f"{name}: the update cannot apply: {err}")
    if isinstance(err, pe.PyMongoError):
        return StoreError(f"{name}: MongoDB error: {err}")
    return StoreError(f"{name}: {type(err).__name__}: {err}")


class _LaneHost(Protocol):
    """What a lane needs of its backend (MongoBackend)."""

    async def write(self, op: WriteOp) -> Any: ...

    def spawn(self, fn: Callable[[], Any]) -> None: ...


@attrs.define
class Lane:
    """Ordered execution of one pipeline's ops, without making its caller wait."""

    backend: _LaneHost
    queue: collections.deque[tuple[Pending, WriteOp]] = attrs.field(factory=collections.deque)
    running: bool = False

    def submit(self, op: WriteOp) -> Pending:
        pending = Pending()
        self.queue.append((pending, op))
        if not self.running:
            self.running = True
            self.backend.spawn(self._drain)
        return pending

    async def _drain(self) -> None:
        try:
            while self.queue:
                pending, op = self.queue.popleft()
                try:
                    pending.resolve(await self.backend.write(op))
                except StoreError as e:
                    pending.fail(e)
        finally:
            self.running = False
