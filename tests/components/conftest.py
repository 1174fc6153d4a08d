"""Component tests run on the real clock: real files, sockets, servers and worker threads."""

from __future__ import annotations
