"""The ``flow8`` command.

Start-up order for every command that runs the platform: load ``.env`` (variables already set
win), configure JSON logging, load and check ``conf/config.yml``; only then open the store and
build the supervision tree. A bad setting ends the command with one line naming the key (exit 2).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from .config import ConfigError, Settings, load_env_file, load_settings, parse_workers
from .logs import configure_logging

if TYPE_CHECKING:
    from .domain import Play

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMED_OUT = 124  # as timeout(1): `run --timeout` passed before the play ended

T = TypeVar("T")
Command = Callable[[argparse.Namespace, Settings], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "command"):
        parser.print_help()
        return EXIT_USAGE
    command: Command = args.command
    load_env_file()
    try:
        # One-shot commands speak through stdout; their logs default to warnings and errors.
        default_level = "info" if command is _serve else "warning"
        configure_logging(os.environ.get("LOG_LEVEL", default_level), _log_format())
        settings = load_settings()
    except (ConfigError, ValueError) as error:
        print(f"flow8: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return command(args, settings)
    except Exception as error:
        # What stops a command for a reason outside it (the store unreachable, the data dir
        # or the port not ours, a child of the tree failing to start) is one line naming the
        # reason; anything else is a bug and keeps its traceback.
        cause = _lone_cause(error)
        if not isinstance(cause, _operational_errors()):
            raise
        print(f"flow8: {cause}", file=sys.stderr)
        return EXIT_FAILED


def _operational_errors() -> tuple[type[Exception], ...]:
    import actors

    from .http import CannotListen
    from .services.exceptions import StoreError

    return (StoreError, CannotListen, actors.RuntimeFailed)


def _lone_cause(error: Exception) -> BaseException:
    """The one error inside nested exception groups, or ``error`` itself."""
    import actors

    inner = actors.leaves(error)
    return inner[0] if len(inner) == 1 else error


def _trio_run(function: Callable[[], Awaitable[T]]) -> T:
    """``trio.run`` that raises a lone error itself rather than inside an exception group.

    Nurseries wrap what escapes them in groups; a CLI error message wants the one real cause.
    """
    try:
        return trio.run(function)
    except BaseExceptionGroup as group:
        import actors

        inner = actors.leaves(group)
        if len(inner) == 1:
            raise inner[0] from group
        raise


def _log_format() -> Any:
    value = os.environ.get("LOG_FORMAT", "json").lower()
    if value not in ("json", "console"):
        raise ConfigError("LOG_FORMAT", f"expected 'json' or 'console', got {value!r}")
    return value


_COMPANY_HELP = "the company's id or slug (default: the only company there is)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flow8", description="Self-hosted workflow automation on an actor runtime."
    )
    commands = parser.add_subparsers(metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the platform until SIGINT/SIGTERM")
    serve.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        help="instance processes to run on this host, sharing its ports: a number or 'auto' "
        "(one per core); default FLOW8_WORKERS, else 1",
    )
    # Set by the parent of --workers N on each worker it starts (flow8.workers); not for people.
    serve.add_argument("--worker-role", help=argparse.SUPPRESS)
    serve.set_defaults(command=_serve)

    actors = commands.add_parser("actors", help="print the live actor tree of a running server")
    actors.add_argument(
        "--url",
        help="server base URL (default: the host and port `flow8 serve` listens on, from "
        "conf/config.yml or SERVER_HOST / SERVER_PORT)",
    )
    actors.add_argument("--json", action="store_true", help="print the raw JSON tree")
    actors.set_defaults(command=_actors)

    init = commands.add_parser("init", help="create the first company and its owner")
    init.add_argument("--company", required=True, help="name of the first company")
    init.add_argument("--email", required=True, help="the owner's email (their login)")
    init.add_argument("--password", required=True, help="the owner's password (10+ characters)")
    init.set_defaults(command=_init)

    run = commands.add_parser("run", help="run a flow in-process and print its result as JSON")
    target = run.add_mutually_exclusive_group(required=True)
    target.add_argument("file", nargs="?", help="a flow JSON file (run on a throwaway store)")
    target.add_argument("--flow", metavar="ID", help="a stored flow, run on the configured store")
    run.add_argument("--company", default=None, help=f"for --flow: {_COMPANY_HELP}")
    run.add_argument("--input", default="null", help="the play input as JSON (default null)")
    run.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help=f"stop waiting after this long: print the play as it stands and exit "
        f"{EXIT_TIMED_OUT}; the play is left as it is (default: wait until it ends)",
    )
    run.set_defaults(command=_run)

    plays = commands.add_parser("plays", help="decide plays that wait for an approval")
    plays_commands = plays.add_subparsers(metavar="ACTION", required=True)
    for name, command, what in (
        ("approve", _plays_approve, "approve the step a play waits on; the play resumes"),
        ("reject", _plays_reject, "reject the step a play waits on; the play fails"),
    ):
        decide = plays_commands.add_parser(name, help=what)
        decide.add_argument("play_id", metavar="PLAY_ID")
        decide.add_argument("--company", help=_COMPANY_HELP)
        decide.set_defaults(command=command)

    modules = commands.add_parser("modules", help="the module catalog")
    modules_commands = modules.add_subparsers(metavar="ACTION", required=True)
    modules_list = modules_commands.add_parser("list", help="print every module")
    modules_list.add_argument("--json", action="store_true", help="print the catalog as JSON")
    modules_list.set_defaults(command=_modules_list)

    flows = commands.add_parser("flows", help="a company's flows as JSON files")
    flows_commands = flows.add_subparsers(metavar="ACTION", required=True)
    flows_list = flows_commands.add_parser("list", help="print every flow of the company")
    flows_list.add_argument("--json", action="store_true", help="print the list as JSON")
    flows_export = flows_commands.add_parser(
        "export", help="print a flow's definition (the body POST /api/flows takes)"
    )
    flows_export.add_argument("flow_id", metavar="FLOW_ID")
    flows_export.add_argument("--version", type=int, default=None, help="default: the latest")
    flows_export.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    flows_import = flows_commands.add_parser(
        "import", help="store a flow file as a new flow, or as the next version of --flow"
    )
    flows_import.add_argument("file", metavar="FILE")
    flows_import.add_argument("--flow", metavar="ID", help="the flow to store a new version of")
    for sub, command in (
        (flows_list, _flows_list),
        (flows_export, _flows_export),
        (flows_import, _flows_import),
    ):
        sub.add_argument("--company", help=_COMPANY_HELP)
        sub.set_defaults(command=command)

    keys = commands.add_parser("keys", help="encryption keys")
    keys_commands = keys.add_subparsers(metavar="ACTION", required=True)
    rotate = keys_commands.add_parser(
        "rotate", help="re-encrypt every secret under the newest key (resumable)"
    )
    rotate.add_argument("--batch-size", type=int, default=500)
    rotate.set_defaults(command=_keys_rotate)
    return parser


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    if args.worker_role:
        from .app import run_server
        from .serving import parse_role

        return run_server(settings, parse_role(args.worker_role))
    workers = args.workers or settings.workers
    if workers > 1:
        from .workers import run_workers

        return run_workers(settings, workers)
    from .app import run_server

    return run_server(settings)


def _workers(value: str) -> int:
    try:
        return parse_workers(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {value!r}")
    return seconds


def _iso(moment: datetime) -> str:
    """ISO-8601 in UTC, as the API writes times (``2025-01-02T03:04:05.678Z``)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    return str(value)


def _dumps(value: Any, **options: Any) -> str:
    """JSON as the CLI prints it: times in ISO-8601 UTC, like the API's."""
    return json.dumps(value, default=_json_default, **options)


def _actors(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    from .admin_client import fetch_actor_tree, render_tree, server_url

    url = args.url or server_url(settings)
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


def _init(args: argparse.Namespace, settings: Settings) -> int:
    from .configured import open_configured_store
    from .services.identity import IdentityError, init_owner

    async def create() -> dict[str, str]:
        async with open_configured_store(settings) as store:
            user, company = await init_owner(
                store, company=args.company, email=args.email, password=args.password
            )
            return {"userId": user.id, "companyId": company.id, "email": user.email,
                    "store": _store_location(store.statistics())}  # fmt: skip

    try:
        created = _trio_run(create)
    except IdentityError as error:
        print(f"flow8: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(_dumps(created))
    return EXIT_OK


def _store_location(statistics: dict[str, Any]) -> str:
    """Which store a command wrote to (the store's statistics never hold a secret)."""
    return str(statistics["location"])


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from .cli_plays import Watched, run_file, run_play
    from .configured import engine_settings, expression_limits, open_configured_store
    from .expressions import configure_expressions
    from .flow_files import read_flow_file
    from .services.identity import IdentityService
    from .services.storage import invalid_text_in

    async def run_stored(flow_id: str, company: str | None) -> Watched:
        # The store as configured, key ring included: keys set only in config.yml must
        # decrypt and encrypt here as they do in the server.
        async with open_configured_store(settings) as store:
            found = await IdentityService(store).resolve_company(company)
            return await run_play(
                store, found.id, flow_id, play_input, settings=engine_settings(settings),
                on_approval=_approval_notice(settings, found.id), timeout=args.timeout,
            )  # fmt: skip

    async def run_throwaway(data: Any) -> Watched:
        return await run_file(
            data, play_input, settings=engine_settings(settings),
            on_approval=_throwaway_approval_notice, timeout=args.timeout,
        )  # fmt: skip

    configure_expressions(expression_limits(settings))  # as the server's
    try:
        play_input = json.loads(args.input)
    except json.JSONDecodeError as error:
        print(f"flow8: --input is not valid JSON: {error}", file=sys.stderr)
        return EXIT_USAGE
    bad_text = invalid_text_in(play_input)
    if bad_text is not None:
        print(f"flow8: --input {bad_text[0] or '(value)'}: {bad_text[1]}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.flow:
            watched = _trio_run(lambda: run_stored(args.flow, args.company))
        else:
            data = read_flow_file(args.file)
            watched = _trio_run(lambda: run_throwaway(data))
    # a bad flow, bad input, an unknown flow or company
    except _flow_errors() as error:
        return _flows_failure(error)
    print(_dumps(watched.result()))
    if watched.gave_up:
        print(f"flow8: stopped waiting after {args.timeout:g} s: play {watched.play.id} is "
              f"{watched.play.state.value}, and is left as it is", file=sys.stderr)  # fmt: skip
        return EXIT_TIMED_OUT
    return EXIT_OK if watched.play.state.value == "DONE" else EXIT_FAILED


def _approval_notice(settings: Settings, company_id: str) -> Callable[[Play], None]:
    """Tells, on stderr, that the play waits for an approval and how to give it."""
    from .admin_client import server_url
    from .services.identity import flow8_command

    def tell(play: Play) -> None:
        decide = f"{flow8_command()} plays {{}} {play.id} --company {shlex.quote(company_id)}"
        print(
            f"flow8: play {play.id} waits for approval of step {play.wait_ref!r}. "
            "Approve (or reject) it with\n"
            f"  {decide.format('approve')}\n"
            f"  {decide.format('reject')}\n"
            "or, on the running server, as a member allowed to approve plays:\n"
            f"  POST {server_url(settings)}/api/plays/{play.id}/approve (or /reject)\n"
            "Waiting until the play ends (--timeout SECONDS stops waiting).",
            file=sys.stderr,
            flush=True,
        )

    return tell


def _throwaway_approval_notice(play: Play) -> None:
    print(
        f"flow8: play {play.id} waits for approval of step {play.wait_ref!r}, which nothing "
        "can give: a flow file runs on a throwaway store, gone when this command ends. Store "
        "the flow (flow8 flows import FILE) and run it with flow8 run --flow ID.",
        file=sys.stderr,
        flush=True,
    )


def _plays_approve(args: argparse.Namespace, settings: Settings) -> int:
    return _plays_decide(args, settings, approve=True)


def _plays_reject(args: argparse.Namespace, settings: Settings) -> int:
    return _plays_decide(args, settings, approve=False)


def _plays_decide(args: argparse.Namespace, settings: Settings, *, approve: bool) -> int:
    from .cli_plays import decide
    from .configured import engine_settings, open_configured_store
    from .services.identity import IdentityService

    async def run() -> Play:
        async with open_configured_store(settings) as store:
            found = await IdentityService(store).resolve_company(args.company)
            return await decide(
                store, found.id, args.play_id, approve=approve, settings=engine_settings(settings)
            )

    try:
        play = _trio_run(run)
    except _flow_errors() as error:  # an unknown play or company, a play not waiting
        return _flows_failure(error)
    print(_dumps({"playId": play.id, "state": play.state.value}))
    return EXIT_OK


def _modules_list(args: argparse.Namespace, _settings: Settings) -> int:
    from .services.modules import module_catalog

    catalog = module_catalog()
    if args.json:
        print(json.dumps(catalog, indent=2))
        return EXIT_OK
    width = max(len(module["appId"]) for module in catalog)
    for module in sorted(catalog, key=lambda m: (m["category"], m["appId"])):
        idempotent = "" if module["idempotent"] else "  (not idempotent)"
        print(f"{module['appId']:<{width}}  {module['category']:<10}  {module['description']}"
              f"{idempotent}")  # fmt: skip
    return EXIT_OK


def _flows_command(
    settings: Settings, company: str | None, use: Callable[[Any], Awaitable[T]]
) -> T:
    """Run ``use(FlowFiles)`` against the configured store, once the company is known (by
    id or slug, or the only one): an unknown company is the identity service's not-found
    error, never a new, unreachable tenant."""
    from .configured import open_configured_store
    from .flow_files import FlowFiles
    from .services.audit import StoreAuditSink
    from .services.flows import FlowService
    from .services.identity import IdentityService

    async def run() -> T:
        async with open_configured_store(settings) as store:
            found = await IdentityService(store).resolve_company(company)
            files = FlowFiles(FlowService.over(store), found.id, StoreAuditSink(store))
            return await use(files)

    return _trio_run(run)


def _flows_failure(error: Exception) -> int:
    """One line per problem of a refused flow; one line for any other error."""
    from .domain import FlowValidationError

    if isinstance(error, FlowValidationError):
        for problem in error.problems:
            print(f"flow8: invalid flow: {problem}", file=sys.stderr)
    else:
        print(f"flow8: {error}", file=sys.stderr)
    return EXIT_FAILED


def _flow_errors() -> tuple[type[Exception], ...]:
    from .domain import FlowValidationError
    from .services.exceptions import EngineError
    from .services.identity import IdentityError

    return (FlowValidationError, EngineError, IdentityError)


def _flows_list(args: argparse.Namespace, settings: Settings) -> int:
    try:
        rows = _flows_command(settings, args.company, lambda files: files.list())
    except _flow_errors() as error:
        return _flows_failure(error)
    if args.json:
        print(_dumps(rows, indent=2))
        return EXIT_OK
    for row in rows:
        print(f"{row['id']}  v{row['version']:<4} {_iso(row['updatedAt'])}  {row['name']}")
    return EXIT_OK


def _flows_export(args: argparse.Namespace, settings: Settings) -> int:
    try:
        data = _flows_command(
            settings, args.company, lambda files: files.export(args.flow_id, args.version)
        )
    except _flow_errors() as error:
        return _flows_failure(error)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as out:
                out.write(text)
        except OSError as error:
            print(f"flow8: cannot write {args.output}: {error}", file=sys.stderr)
            return EXIT_FAILED
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _flows_import(args: argparse.Namespace, settings: Settings) -> int:
    from .flow_files import read_flow_file

    try:
        data = read_flow_file(args.file)
        stored = _flows_command(
            settings, args.company, lambda files: files.import_(data, args.flow)
        )
    except _flow_errors() as error:
        return _flows_failure(error)
    print(_dumps(stored))
    return EXIT_OK


def _keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from .configured import open_configured_store
    from .services.exceptions import StoreError
    from .services.storage import rotate_keys

    async def rotate() -> int:
        async with open_configured_store(settings) as store:
            return await rotate_keys(store, batch_size=args.batch_size)

    try:
        rewritten = _trio_run(rotate)
    except StoreError as error:
        print(f"flow8: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps({"reencrypted": rewritten}))
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
