"""Errors raised by the document store.

Every backend maps its own failures (sqlite3, pymongo, cryptography) onto this hierarchy and
chains the original exception, so callers never catch third-party types::

    StoreError
    ├── InvalidQuery          malformed filter, sort, projection or update; unknown operator
    ├── InvalidDocument       bad key, unsupported value, naive datetime, document over 16 MB
    ├── UpdateFailed          an update that is well formed but cannot apply to a stored document
    │                         ($inc on a string, $push on a non-array, changing _id)
    ├── TenancyError          missing company id, company_id touched by an update, a tenant
    │                         collection reached through the system scope or vice versa
    ├── UnknownCollection     a name absent from the catalog
    ├── DuplicateKey          a unique index refused a write (``.index`` names it)
    ├── EncryptionError
    │   ├── KeyringError      FLOW8_ENCRYPTION_KEYS malformed or missing where required
    │   └── DecryptionFailed  wrong key, unknown key id, or a ciphertext moved to another place
    ├── StoreUnavailable      the database cannot be reached or opened (URL shown without
    │   │                     credentials)
    │   └── DatabaseLocked    another process held the write lock past the busy timeout
    ├── StorageFull           the disk (or the database's size limit) is full
    └── StoreClosed           the store was used after its context exited
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises."""


class InvalidQuery(StoreError):
    """A filter, sort, projection or update document is malformed or outside the subset."""


class InvalidDocument(StoreError):
    """A document cannot be stored: bad key, unsupported value type, or too large."""


class UpdateFailed(StoreError):
    """A well-formed update could not be applied to a stored document."""


class TenancyError(StoreError):
    """A request would cross or escape the tenant boundary."""


class UnknownCollection(StoreError):
    """The collection name is not declared in the catalog."""


class DuplicateKey(StoreError):
    """A unique index refused the write."""

    def __init__(self, collection: str, index: str, message: str | None = None) -> None:
        self.collection = collection
        self.index = index
        super().__init__(message or f"duplicate key in {collection!r}: unique index {index!r}")


class EncryptionError(StoreError):
    """Field encryption failed."""


class KeyringError(EncryptionError):
    """The encryption key ring is malformed or missing where one is required."""


class DecryptionFailed(EncryptionError):
    """A secret field could not be decrypted (wrong key, unknown key id, moved ciphertext)."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or opened."""


class DatabaseLocked(StoreUnavailable):
    """Another process held the database write lock past the busy timeout."""


class StorageFull(StoreError):
    """The disk or the database size limit is full; the write was not made."""


class StoreClosed(StoreError):
    """The store was used after it was closed."""
