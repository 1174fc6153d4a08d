"""Pages of the flows area (see README.md: one group per area)."""

from __future__ import annotations

from ._pages import Pages

pages = Pages("flows")
