"""First-run helpers for the CLI: `flow8 init` and the hint `flow8 serve` prints."""

from __future__ import annotations

from flow8.store import Store

from ._models import Company, User
from ._service import IdentityService


async def needs_install(store: Store) -> bool:
    return not await IdentityService(store).installed()


async def init_owner(
    store: Store, *, company: str, email: str, password: str
) -> tuple[User, Company]:
    """`flow8 init --company NAME --email E --password P`: the first company and its owner.

    Raises `AlreadyInstalled` once any user exists and `InvalidInput` for a bad value.
    """
    return await IdentityService(store).install(company, email, password)


def install_instructions(base_url: str) -> str:
    """What `flow8 serve` prints on a fresh data dir (no user yet)."""
    url = base_url.rstrip("/")
    return (
        "flow8 has no users yet. Create the first company and its owner, either:\n"
        f"  flow8 init --company 'Acme' --email you@example.com --password '<10+ chars>'\n"
        "or over HTTP (only while no user exists):\n"
        f"  curl -X POST {url}/api/install -H 'Content-Type: application/json' \\\n"
        '       -d \'{"company": "Acme", "email": "you@example.com", '
        '"password": "<10+ chars>"}\''
    )
