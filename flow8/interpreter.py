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
