"""Errors any service may raise, re-exported from where they are raised, so that the
interfaces map them without importing the engine or the store.

Each service names its own too (``flows.FlowNotFound``, ``plays.PlayNotFound``,
``kv.KvError``, ``identity.IdentityError``, ``credentials.CredentialError``, ...); here are
the ones that are no single service's:

* :class:`EngineError`: the base of the flows', plays' and KV's errors (``FlowNotFound``,
  ``PlayNotFound``, ``PlayStateError``, ``InvalidInput``, ``KvError``, ...).
* :class:`StoreError` and what it is: :class:`StoreUnavailable` / :class:`StoreClosed` (an
  outage: retry later), :class:`InvalidDocument` (a value the store cannot hold: the
  caller's mistake).
"""

from flow8.engine import EngineError
from flow8.store import InvalidDocument, StoreClosed, StoreError, StoreUnavailable

__all__ = ["EngineError", "InvalidDocument", "StoreClosed", "StoreError", "StoreUnavailable"]
