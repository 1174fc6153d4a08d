"""Garbage-collector settings for a long-running server (the GIL: see expressions/_background.py).

Measured with `scripts/bench/api.py` (64 concurrent `POST /api/flows/{id}/run`): with the
defaults, every full (generation 2) collection walked the ~90,000 objects that start-up leaves
behind (modules, the app, its routes and schemas) and paused the event loop for up to 30 ms,
which is most of the p99 latency. Start-up objects never become garbage, so they are moved out
of the collector's sight once the server is up (`gc.freeze`), and the youngest generation is
collected every 10,000 allocations instead of 700, so that the objects of requests in flight
(most of them freed by reference counting anyway) are not scanned over and over.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def settle_after_startup() -> None:
    """Call once, when the server is up: collect start-up garbage, then freeze what is left."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def settle_after_import() -> None:
    """Call after a library was imported while the server runs (a component provider's SDK,
    imported the first time a company uses it): its modules and classes are as permanent as
    start-up's, so they are frozen too. Left in sight, openai's and anthropic's ~170,000
    objects made every later full collection pause the event loop ~120-140 ms (2-core box).
    Nothing is collected first: a full collection would pause the loop as long (the collector
    holds the GIL); what garbage is frozen with them is a one-time, bounded cost."""
    gc.freeze()
