"""Channels: the ways into flow8 from outside on ports of their own (``CHANNEL_PORT_RANGE``).

The tree::

    channels                 supervisor (one_for_all)
    ├── listeners            dynamic supervisor
    │   ├── channel-<id>     one task per enabled http/ws/tcp channel, owning its socket;
    │   └── ...              TRANSIENT: a crash restarts that channel only. ``info`` shows
    │                        the channel, kind, port, connections, requests, plays started
    │                        and rejections.
    └── manager              keeps ``listeners`` in line with the stored channels: told at
                             once by ``ChannelManager.changed`` (the service's on_change),
                             re-reading every ``resync_seconds`` for other instances' changes.

Build it with ``spec, manager = channels_child(service, plays, events, audit.record, ...)``,
put ``spec`` in the tree, pass ``manager.changed`` as the service's ``on_change`` and call
``manager.attach(runtime)`` once the runtime is open.

**http** (HTTP/1.1, keep-alive). A request matching a route (method + path, ``{name}``
segments become params) starts each target flow with input ``{body, headers, query, method,
path, params}``: ``body`` is parsed JSON for a JSON Content-Type, else text; ``headers`` are
lower-cased, without ``authorization``, ``cookie`` and the HMAC signature header. Answers:

* ``async``: 202 ``{"playId", "status": "queued"}``.
* ``sync``: the play's output as JSON 200; a play whose last step is ``respond`` answers that
  step's ``statusCode``, ``headers`` and ``body``; a failed play 502 ``{"playId",
  "error"}``; a play still running after ``timeoutSeconds`` 202 ``{"playId", "status":
  "running"}``.
* A route with several target flows answers ``{"plays": [...]}``: async, 202 with
  ``{"playId", "status": "queued"}`` each; sync, 200 (202 if one still runs) with
  ``{"playId", "state", "output"}`` / ``{"playId", "state", "error"}`` / ``{"playId",
  "status": "running"}`` each.
* Refusals: 401 ``{"error": "UNAUTHORIZED"}`` (bad token or signature; nothing more), 404
  ``NOT_FOUND``, 405 ``METHOD_NOT_ALLOWED``, 413 ``PAYLOAD_TOO_LARGE``, 429 ``RATE_LIMITED``
  (per client address: ``ratePerSecond``, bursts of twice that), 400 ``INVALID_JSON`` /
  ``INVALID_INPUT``, 409 ``IDEMPOTENCY_KEY_REUSED``. ``Idempotency-Key`` makes a repeated
  request answer the same play.

**ws** and **tcp** (one JSON object per WebSocket message / per line)::

    -> {"id": "1", "route": "<route name>", "args": {...}}
    <- {"id": "1", "playId": "...", "event": {"type": "play:layer:completed", ...}}  (each event)
    <- {"id": "1", "playId": "...", "result": <output>}   or   {"id": "1", "playId", "error"}
    <- {"id": "1", "error": "ROUTE_NOT_FOUND", "message": "..."}        (a refused message)

One result per target flow; many ids may be in flight at once. A ws handshake with an Origin
not in ``allowed_origins`` is refused 403 (no Origin: allowed); ``header_token`` needs
``Authorization: Bearer`` (ws) or a first line ``{"auth": "<token>"}`` (tcp). A client too
slow to read is dropped (ws close 1013, tcp a last ``{"error": "TOO_SLOW"}`` line) and no play
waits for it. Every request and message is audited (``channel_request``: channel, route,
client address, status, play ids; never headers or bodies).
"""

from __future__ import annotations

from ._context import Limits
from ._manager import ChannelManager, channels_child, child_id
from ._source import ChannelSource
from ._stats import ChannelStats

__all__ = [
    "ChannelManager",
    "ChannelSource",
    "ChannelStats",
    "Limits",
    "channels_child",
    "child_id",
]
