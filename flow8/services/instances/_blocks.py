"""Channel port blocks: which ports the instance holding an index serves.

Index 1 serves ``CHANNEL_PORT_RANGE`` itself (7701-7799 by default); index 2 the next hundred
ports after it (7800-7899), index 3 the hundred after those, and so on: the layout the seed
documents ("each instance gets its own channel port range, e.g. 7701-7799, 7800-7899"). A
channel is given a port from the block of the instance that creates it and is served by
whichever instance holds that block's index, so a block outlives the process that held it:
the next instance to claim the index serves its channels again.
"""

from __future__ import annotations

from flow8.config import PortRange

BLOCK_SIZE = 100


def channel_block(base: PortRange, index: int) -> PortRange:
    """The ports of the block of instance ``index`` (1 = ``base``)."""
    if index < 1:
        raise ValueError(f"an instance index starts at 1, got {index}")
    if index == 1:
        return base
    first = base.last + 1 + (index - 2) * BLOCK_SIZE
    last = first + BLOCK_SIZE - 1
    if last > 65535:
        raise ValueError(
            f"instance {index} has no channel block: it would end past port 65535 "
            f"(CHANNEL_PORT_RANGE {base})"
        )
    return PortRange(first, last)
