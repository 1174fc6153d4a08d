"""Per-channel counters, shown as the ``info`` of the channel's node in the actor tree.

Owned by the channel's slot in the manager, not by one incarnation of its actor, so the
counts survive a restart of the listener (like a mailbox's count of messages handled)."""

from __future__ import annotations

from typing import Any

import attrs

from flow8.services.channels import Channel


@attrs.define
class ChannelStats:
    channel: Channel
    connections: int = 0  # open now
    connections_total: int = 0
    requests: int = 0
    plays_started: int = 0
    rejected_auth: int = 0
    rejected_rate: int = 0
    rejected_size: int = 0
    rejected_connections: int = 0
    not_found: int = 0
    dropped_slow: int = 0

    def info(self) -> dict[str, Any]:
        return {
            "channelId": self.channel.id,
            "companyId": self.channel.company_id,
            "kind": self.channel.kind.value,
            "port": self.channel.port,
            "rev": self.channel.rev,
            "connections": self.connections,
            "connectionsTotal": self.connections_total,
            "requests": self.requests,
            "playsStarted": self.plays_started,
            "rejected": {
                "auth": self.rejected_auth,
                "rate": self.rejected_rate,
                "size": self.rejected_size,
                "connections": self.rejected_connections,
                "notFound": self.not_found,
                "slowClients": self.dropped_slow,
            },
        }
