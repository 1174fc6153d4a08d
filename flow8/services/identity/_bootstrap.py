"""First-run helpers for the CLI: `flow8 init` and the hint `flow8 serve` prints."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

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


def flow8_command() -> str:
    """How to run this installation's ``flow8`` from the working directory: the script beside
    this interpreter (the virtual environment's), relative when it lies below the working
    directory, else the interpreter running the CLI module."""
    interpreter = Path(sys.executable)  # not resolved: a venv's python is a link out of it
    script = interpreter.parent / "flow8"
    if not script.is_file():
        return f"{shlex.quote(str(interpreter))} -m flow8.cli"
    try:
        shown = os.path.relpath(script)
    except ValueError:  # another drive (Windows)
        shown = str(script)
    if shown.startswith(".."):
        shown = str(script)
    elif os.sep not in shown:
        shown = os.path.join(".", shown)  # a bare name would be looked up on PATH
    return shlex.quote(shown)


def install_instructions(base_url: str, *, data_dir: Path | None = None) -> str:
    """What `flow8 serve` prints on a fresh data dir (no user yet): the ``init`` command as
    this installation runs it (the venv's ``flow8``), on this server's data dir."""
    url = base_url.rstrip("/")
    where = ""
    command = flow8_command()
    if data_dir is not None:
        where = f" (data dir {data_dir})"
        # Named on the command line: a FLOW8_DATA_DIR given to the server alone (not in
        # .env) would otherwise send init to ./data, a store the server never reads.
        command = f"FLOW8_DATA_DIR={shlex.quote(str(data_dir))} {command}"
    return (
        f"flow8 has no users yet{where}. Create the first company and its owner, either\n"
        f"from {shlex.quote(os.getcwd())}:\n"
        f"  {command} init --company 'Acme' --email you@example.com --password '<10+ chars>'\n"
        "or over HTTP (only while no user exists):\n"
        f"  curl -X POST {url}/api/install -H 'Content-Type: application/json' \\\n"
        '       -d \'{"company": "Acme", "email": "you@example.com", '
        '"password": "<10+ chars>"}\''
    )
