"""Document store: a pymongo-shaped port with sqlite and MongoDB backends.

See README.md in this package for usage. Public names only; everything else is private.
"""

from ._catalog import CATALOG, Catalog, CollectionSpec, IndexSpec, index
from ._crypto import Keyring, load_keyring
from ._ids import new_id
from ._open import open_store, serve_store
from ._outage import UNREACHABLE, OutagePause
from ._port import (
    Collection,
    Document,
    Durability,
    Filter,
    Pipeline,
    Projection,
    ReturnDocument,
    Sort,
    Store,
    SystemScope,
    TenantScope,
    Update,
    UpdateResult,
)
from ._rotate import rotate_keys
from ._values import check_storable, invalid_text, invalid_text_in, prepare_value
from .exceptions import (
    DatabaseLocked,
    DecryptionFailed,
    DuplicateKey,
    EncryptionError,
    InvalidDocument,
    InvalidQuery,
    KeyringError,
    StorageFull,
    StoreClosed,
    StoreError,
    StoreUnavailable,
    TenancyError,
    UnknownCollection,
    UpdateFailed,
)

__all__ = [
    "CATALOG",
    "UNREACHABLE",
    "Catalog",
    "Collection",
    "CollectionSpec",
    "DatabaseLocked",
    "DecryptionFailed",
    "Document",
    "DuplicateKey",
    "Durability",
    "EncryptionError",
    "Filter",
    "IndexSpec",
    "InvalidDocument",
    "InvalidQuery",
    "Keyring",
    "KeyringError",
    "OutagePause",
    "Pipeline",
    "Projection",
    "ReturnDocument",
    "Sort",
    "StorageFull",
    "Store",
    "StoreClosed",
    "StoreError",
    "StoreUnavailable",
    "SystemScope",
    "TenancyError",
    "TenantScope",
    "UnknownCollection",
    "Update",
    "UpdateFailed",
    "UpdateResult",
    "check_storable",
    "index",
    "invalid_text",
    "invalid_text_in",
    "load_keyring",
    "new_id",
    "open_store",
    "prepare_value",
    "rotate_keys",
    "serve_store",
]
