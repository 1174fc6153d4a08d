"""Audit entries for what the ``flow8`` command does to a company (imports flows, starts and
decides plays), written at once.

No signed-in user stands behind a command: the actor is the CLI (user agent ``flow8-cli``,
``details.via`` ``cli``) and the operating-system user who ran it (``details.osUser``), since
whoever can run the command against the store can act as anybody.
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from flow8.store import Store

from ._entry import AuditEntry
from ._store import StoreAuditSink

CLI_USER_AGENT = "flow8-cli"


def os_user() -> str:
    """The login of whoever runs this process; the uid when it has no name (a container
    running as an id the password database does not list)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def cli_entry(
    action: str,
    company_id: str,
    *,
    target_type: str,
    target_id: str,
    before: Any = None,
    after: Any = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """An entry for a change made through the CLI, shaped as the API's change entries."""
    return AuditEntry(
        action,
        company_id=company_id,
        user_agent=CLI_USER_AGENT,
        target_type=target_type,
        target_id=target_id,
        before=before,
        after=after,
        details={"via": "cli", "osUser": os_user(), **(details or {})},
    )


async def write_now(store: Store, entry: AuditEntry) -> None:
    """Store ``entry`` before returning.

    Not through the batching AuditLog: a command exits right after, and must not report
    success before its entry is stored.
    """
    await StoreAuditSink(store).write(entry.company_id, [entry.to_doc()])
