"""Instances: each ``flow8 serve`` process registers itself, heartbeats, and holds an
instance index that picks its channel port block (see ``_registry`` and ``_blocks``)."""

from ._blocks import BLOCK_SIZE, channel_block
from ._registry import InstanceInfo, InstanceRegistry

__all__ = ["BLOCK_SIZE", "InstanceInfo", "InstanceRegistry", "channel_block"]
