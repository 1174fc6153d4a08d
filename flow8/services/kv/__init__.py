"""KV: a company's key-value entries (values encrypted at rest, optional TTL, secret marks).

:class:`KvService` is what the interfaces call; :class:`KvStore` keeps the entries, and is
also the ``flow8.engine.KvStorage`` through which plays' kv modules reach them.
"""

from flow8.engine import MASK, KvError

from ._service import KvService
from ._store import KvStore

__all__ = ["MASK", "KvError", "KvService", "KvStore"]
