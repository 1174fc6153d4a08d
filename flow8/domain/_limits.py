"""Bounds on what a flow definition may ask for, checked when a flow is saved.

Each bound closes a way one flow could hurt everybody else: a retry policy of a million
attempts without delay, a back-off that overflows, names long enough to bloat every layer and
event. They are fixed rather than configured: a flow that needs more is doing something else
(a retry loop of hours belongs in a schedule, not in one step).
"""

from __future__ import annotations

MAX_RETRY_COUNT = 10
"""Retries of one step (so at most 11 attempts, and 11 entries in a layer's attempt list)."""

MAX_RETRY_DELAY_MS = 3_600_000
"""``delayMs`` and ``maxDelayMs``: one hour. The computed back-off never exceeds maxDelayMs."""

MAX_BACKOFF_MULTIPLIER = 10.0

MAX_REF_LENGTH = 100
"""A step's ``ref`` is an identifier used in expressions (``$prev.<ref>``) and layer ids."""

MAX_NAME_LENGTH = 200
"""Names of flows, steps and groups."""

MAX_DESCRIPTION_LENGTH = 10_000

MAX_FLOWLETS = 1_000
MAX_TAGS = 20  # per flow
MAX_TAG_LENGTH = 40

MAX_FILTERS = 50
"""Filters on one step."""

MAX_COMPONENT_CHOICES = 20
"""Component kinds one step may name a config for (``componentConfigIds``)."""
