"""The heap as `flow8 serve` keeps it, for tests that time how long the event loop is held.

The server freezes what start-up allocated (``flow8.interpreter.settle_after_startup``) and
what a provider's library brought when it was first used (``settle_after_import``), so a full
collection, which holds the GIL, walks only what requests and plays allocate since. A test
process holds far more: every module the suite imported so far (the AI SDKs alone are ~170,000
objects), and a full collection that lands in a timed test walks all of it (300-400 ms
measured on the 2-core box, in the order CI runs the suite), which is the test process's
pause, not the code's.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Collect, then freeze what is left, for the duration (as the server does once up)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
