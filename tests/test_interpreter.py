"""The server moves start-up objects out of the collector's sight once it is up."""

from __future__ import annotations

import gc

from flow8.interpreter import YOUNG_THRESHOLD, settle_after_startup


def test_settling_freezes_startup_objects_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        settle_after_startup()
        assert gc.get_freeze_count() > 1000  # modules, classes, functions of start-up
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_threshold()[1:] == before[1:]
        # frozen objects are not walked by a full collection any more
        tracked = len(gc.get_objects())
        assert tracked < gc.get_freeze_count()
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
