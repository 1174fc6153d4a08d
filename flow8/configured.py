"""What the server and the command line build alike from the settings: the store (its data
directory kept private, its key ring), the engine's settings and the expressions' limits.

Apart from ``flow8.app`` (the whole supervision tree: HTTP, MCP, channels, jobs), so that a
command that only reads flows or writes an owner imports what it uses: through ``flow8.app``
every ``flow8 flows list`` paid over a second of imports.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs

from .config import Settings
from .engine import EngineSettings
from .expressions import ExpressionLimits
from .logs import get_logger
from .store import Store, StoreUnavailable, load_keyring, open_store

log = get_logger("flow8.app")


@asynccontextmanager
async def open_configured_store(settings: Settings, *, serve: bool = True) -> AsyncIterator[Store]:
    """The store the settings describe, with its key ring (used by serve and the CLI).

    ``serve=False`` leaves the writer to the ``store`` actor of the tree.
    """
    try:
        # Private: it holds the database and the generated encryption key.
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _make_private(settings.data_dir)
    except OSError as e:
        raise StoreUnavailable(
            f"cannot create the data directory {str(settings.data_dir)!r} (FLOW8_DATA_DIR): "
            f"{e.strerror or e}"
        ) from e
    on_mongo = settings.store_url.startswith("mongodb")
    keyring = load_keyring(
        settings.encryption_keys, settings.data_dir, backend="mongo" if on_mongo else "sqlite"
    )
    async with open_store(
        settings.store_url,
        data_dir=settings.data_dir,
        durability=settings.store_durability,
        encryption=keyring,
        serve=serve,
    ) as store:
        yield store


def _make_private(directory: Path) -> None:
    """A data directory an earlier version (or the umask) left readable by others is made
    0700, if this user owns it; the change is logged."""
    info = directory.stat()
    if info.st_mode & 0o077 and info.st_uid == os.getuid():
        directory.chmod(0o700)
        log.warning("data_dir_made_private", path=str(directory), was=oct(info.st_mode & 0o777))


def expression_limits(settings: Settings) -> ExpressionLimits:
    return ExpressionLimits(
        timeout_ms=settings.expression_timeout_ms,
        memory_bytes=settings.expression_memory_mb * 1024 * 1024,
        max_depth=settings.expression_max_depth,
        threads=settings.expression_threads,
    )


def engine_settings(settings: Settings, *, instance_id: str | None = None) -> EngineSettings:
    """The engine's tunables from the settings; ``instance_id`` names this process's play
    leases (the instance registry's id, so leases and the registry tell one story)."""
    tuned = EngineSettings(
        lease_seconds=settings.play_lease_seconds,
        max_output_bytes=settings.max_step_bytes,
        max_play_crashes=settings.max_play_crashes,
        max_descendant_plays=settings.max_descendant_plays,
        company_plays_per_second=settings.company_plays_per_second,
        company_running_plays=settings.company_running_plays,
        encrypt_play_data=settings.encrypt_play_data,
    )
    return attrs.evolve(tuned, instance_id=instance_id) if instance_id else tuned
