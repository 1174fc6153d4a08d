"""Pages of the plays area (see README.md: one group per area)."""

from __future__ import annotations

from ._pages import Pages

pages = Pages("plays")
