"""Interpreter settings for a long-running server: the garbage collector and the GIL.

Garbage collector. Measured with `scripts/bench/api.py` (64 concurrent
`POST /api/flows/{id}/run`): with the defaults, every full (generation 2) collection walked
the ~90,000 objects that start-up leaves behind (modules, the app, its routes and schemas) and
paused the event loop for up to 30 ms, which is most of the p99 latency. Start-up objects
never become garbage, so they are moved out of the collector's sight once the server is up
(`gc.freeze`), and the youngest generation is collected every 10,000 allocations instead of
700, so that the objects of requests in flight (most of them freed by reference counting
anyway) are not scanned over and over.

GIL. The event loop shares the interpreter with the store's writer thread and with the
background threads that evaluate one tenant's heavy expressions. Every time the loop waits
for the network it lets go of the GIL, and getting it back from a busy thread takes up to the
switch interval (5 ms by default); a request that waits for the network ten times waited up
to 50 ms for the GIL alone. Measured with the attack suite's bystander while another tenant's
expressions ran in the background (`tests/security/test_03_expressions.py`, 2 cores): its
slowest answers 44-188 ms at 5 ms, 39-64 ms at 1 ms.
"""

from __future__ import annotations

import gc
import sys

YOUNG_THRESHOLD = 10_000
SWITCH_INTERVAL_SECONDS = 0.001


def settle_after_startup() -> None:
    """Call once, when the server is up: collect start-up garbage, then freeze what is left;
    and hand the GIL over sooner."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
