"""The store's own use cases and rules, for the interfaces that must not hold the store.

* :func:`invalid_text_in`: the text the store refuses (a lone surrogate), so that an
  interface refuses it first, naming the field (every JSON body, WebSocket frame, flow file
  and ``--input``).
* :func:`rotate_keys`: ``flow8 keys rotate``, every secret field re-encrypted under the
  newest key of the key ring.

Its errors are in :mod:`flow8.services.exceptions`.
"""

from flow8.store import invalid_text_in, rotate_keys

__all__ = ["invalid_text_in", "rotate_keys"]
