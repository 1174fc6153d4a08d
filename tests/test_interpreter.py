"""The server moves start-up objects out of the collector's sight once it is up, and hands
the GIL over sooner than the interpreter's default."""

from __future__ import annotations

import gc
import sys

from flow8.interpreter import SWITCH_INTERVAL_SECONDS, YOUNG_THRESHOLD, settle_after_startup


def test_settling_freezes_startup_objects_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    interval = sys.getswitchinterval()
    try:
        settle_after_startup()
        assert gc.get_freeze_count() > 1000  # modules, classes, functions of start-up
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_threshold()[1:] == before[1:]
        # frozen objects are not walked by a full collection any more
        tracked = len(gc.get_objects())
        assert tracked < gc.get_freeze_count()
        assert sys.getswitchinterval() == SWITCH_INTERVAL_SECONDS < interval
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
        sys.setswitchinterval(interval)
