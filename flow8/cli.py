"""The ``flow8`` command.

Start-up order for every command that runs the platform: load ``.env`` (variables already set
win), configure JSON logging, load and check ``conf/config.yml``; only then open the store and
build the supervision tree. A bad setting ends the command with one line naming the key (exit 2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .config import ConfigError, Settings, load_env_file, load_settings
from .logs import configure_logging

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

Command = Callable[[argparse.Namespace, Settings], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "command"):
        parser.print_help()
        return EXIT_USAGE
    load_env_file()
    try:
        configure_logging(os.environ.get("LOG_LEVEL", "info"), _log_format())
        settings = load_settings()
    except (ConfigError, ValueError) as error:
        print(f"flow8: {error}", file=sys.stderr)
        return EXIT_USAGE
    command: Command = args.command
    return command(args, settings)


def _log_format() -> Any:
    value = os.environ.get("LOG_FORMAT", "json").lower()
    if value not in ("json", "console"):
        raise ConfigError("LOG_FORMAT", f"expected 'json' or 'console', got {value!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flow8", description="Self-hosted workflow automation on an actor runtime."
    )
    commands = parser.add_subparsers(metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the platform until SIGINT/SIGTERM")
    serve.set_defaults(command=_serve)

    actors = commands.add_parser("actors", help="print the live actor tree of a running server")
    actors.add_argument("--url", help="server base URL (default: http://SERVER_HOST:SERVER_PORT)")
    actors.add_argument("--json", action="store_true", help="print the raw JSON tree")
    actors.set_defaults(command=_actors)
    return parser


def _serve(_args: argparse.Namespace, settings: Settings) -> int:
    from .app import run_server

    return run_server(settings)


def _actors(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    from .admin_client import fetch_actor_tree, render_tree

    host = "127.0.0.1" if settings.server_host in ("0.0.0.0", "::") else settings.server_host
    url = args.url or f"http://{host}:{settings.server_port}"
    if not settings.admin_token:
        print("flow8: FLOW8_ADMIN_TOKEN is not set, so /admin/actors is off", file=sys.stderr)
        return EXIT_USAGE
    try:
        tree = fetch_actor_tree(url, settings.admin_token)
    except httpx.HTTPError as error:
        print(f"flow8: cannot read the actor tree from {url}: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(tree, indent=2) if args.json else render_tree(tree))
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
