"""The audit trail of the current company, and the live actor tree as a company's owners and
admins may see it.

`/admin/actors` is the admin blueprint's URL (`_admin.py`): operators holding the instance's
ADMIN_TOKEN get the whole tree there. A browser that brings no admin token or admin cookie but
a flow8 session is handed to `serve_actor_page` here, so the page goes through the same gate,
session, role check and error pages as every other page. The tree is instance-wide: a
company's owner sees its structure and statistics, its own plays and channels, and only a
count of the nodes of other companies (see `tenant_tree`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import trio
from quart import Response

from flow8.services.audit import AuditFilter
from flow8.services.identity import Action
from flow8.services.plays import PlayNotFound

from .._audit_routes import AuditEntryOut
from .._context import app, play_service
from ..exceptions import NotFound, ValidationFailed
from ._pages import PageReq, Pages, PageSpec, render, serve_page

pages = Pages("audit")

AUDIT_PAGE_SIZE = 25
_TEXT_FILTERS = {
    "action": 100,
    "user_id": 64,
    "target_type": 100,
    "target_id": 200,
    "method": 10,
}


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def _moment(name: str, value: str, problems: list[dict[str, str]]) -> datetime | None:
    """A `datetime-local` value (or ISO 8601), read as UTC when it names no zone."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        problems.append({"field": name, "message": "is not a date and time"})
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def audit_filter(args: Mapping[str, str]) -> tuple[AuditFilter, dict[str, str]]:
    """The filter the query string asks for (what `GET /api/audit` accepts), and the query
    values to keep in the pager's links; a value out of bounds is a 422."""
    problems: list[dict[str, str]] = []
    kept: dict[str, str] = {}
    text: dict[str, str | None] = {}
    for name, limit in _TEXT_FILTERS.items():
        value = (args.get(name) or "").strip()
        if len(value) > limit:
            problems.append({"field": name, "message": f"must be at most {limit} characters"})
        text[name] = value or None
        if value:
            kept[name] = value
    status: int | None = None
    if args.get("status"):
        kept["status"] = args["status"]
        try:
            status = int(args["status"])
        except ValueError:
            status = 0
        if not 100 <= status <= 599:
            problems.append({"field": "status", "message": "must be an HTTP status, 100 to 599"})
    since = _moment("since", args.get("since", ""), problems)
    until = _moment("until", args.get("until", ""), problems)
    for name in ("since", "until"):
        if args.get(name):
            kept[name] = args[name]
    if problems:
        raise ValidationFailed(problems)
    where = AuditFilter(
        text["action"],
        text["user_id"],
        text["target_type"],
        text["target_id"],
        text["method"],
        status,
        since,
        until,
    )
    return where, kept


@pages.get("/audit", action=Action.AUDIT_READ)
async def audit(page: PageReq) -> Response:
    queries = app().deps.audit_queries
    if queries is None:
        raise NotFound("audit store not configured")
    number = _int(page.args.get("page"))
    errors: dict[str, str] = {}
    try:
        where, kept = audit_filter(page.args)
    except ValidationFailed as error:
        errors = {f["field"]: f["message"] for f in error.fields}
        where, kept = AuditFilter(), {}
    rows, total = await queries.page(
        page.company_id, where, skip=number * AUDIT_PAGE_SIZE, limit=AUDIT_PAGE_SIZE
    )
    suggestions = None
    cache = app().deps.audit_filters
    if cache is not None:
        suggestions = await cache.get(page.company_id)
    return render(
        page,
        "workspace/audit.html",
        status=422 if errors else 200,
        entries=[AuditEntryOut.of(r) for r in rows],
        total=total,
        number=number,
        pages_count=(total + AUDIT_PAGE_SIZE - 1) // AUDIT_PAGE_SIZE,
        kept=kept,
        filters={k: page.args.get(k, "") for k in (*_TEXT_FILTERS, "status", "since", "until")},
        errors=errors,
        suggestions=suggestions,
    )


# -- the actor tree ------------------------------------------------------------------------

_PLAY_PREFIX = "play-"
_NODE_KEYS = (
    "name",
    "kind",
    "strategy",
    "state",
    "restarts",
    "mailbox",
    "messagesHandled",
    "uptimeSeconds",
    "childCount",
    "info",
)


def play_ids(tree: Mapping[str, Any]) -> list[str]:
    """The ids of the play actors listed anywhere in the tree."""
    found: list[str] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        name = str(node.get("name", ""))
        if name.startswith(_PLAY_PREFIX):
            found.append(name[len(_PLAY_PREFIX) :])
        stack.extend(c for c in node.get("children") or () if isinstance(c, Mapping))
    return found


def tenant_tree(tree: Mapping[str, Any], company_id: str, own_plays: set[str]) -> dict[str, Any]:
    """The tree as one company may see it: every structural node with its statistics, the
    company's own play actors and channel listeners, and in place of other companies' nodes
    only their number (`hiddenChildren`). A node belongs to a company when it is a play of
    it or its `info` names it (`companyId`)."""

    def mine(node: Mapping[str, Any]) -> bool:
        name = str(node.get("name", ""))
        if name.startswith(_PLAY_PREFIX):
            return name[len(_PLAY_PREFIX) :] in own_plays
        info = node.get("info")
        if isinstance(info, Mapping) and "companyId" in info:
            return bool(info["companyId"] == company_id)
        return True

    def copy(node: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: node.get(k) for k in _NODE_KEYS}  # absent: None, as a template expects
        children = [c for c in node.get("children") or () if isinstance(c, Mapping)]
        shown = [copy(c) for c in children if mine(c)]
        out["children"] = shown
        out["hiddenChildren"] = len(children) - len(shown)
        return out

    return copy(tree) if tree else {}


async def _own_plays(company_id: str, ids: list[str]) -> set[str]:
    """Which of these running plays are the company's: asked of the play service, which
    finds a play in its own company only."""
    own: set[str] = set()
    limiter = trio.CapacityLimiter(16)

    async def check(play_id: str) -> None:
        async with limiter:
            try:
                await play_service().get(company_id, play_id)
            except PlayNotFound:
                return
            own.add(play_id)

    async with trio.open_nursery() as nursery:
        for play_id in ids:
            nursery.start_soon(check, play_id)
    return own


def _count(node: Mapping[str, Any]) -> int:
    return 1 + sum(_count(c) for c in node.get("children", ()))


async def _tree(page: PageReq, template: str, **more: Any) -> Response:
    tree = app().deps.actor_tree()
    own = await _own_plays(page.company_id, play_ids(tree))
    shown = tenant_tree(tree, page.company_id, own)
    nodes = _count(shown) if shown else 0
    return render(page, template, tree=shown, nodes=nodes, now=datetime.now(UTC), **more)


async def actors_page(page: PageReq) -> Response:
    registry = app().deps.instances
    instances = await registry.live() if registry is not None else []
    current = registry.instance_id if registry is not None else None
    return await _tree(page, "workspace/actors.html", instances=instances, current=current)


# Served at /admin/actors by the admin blueprint (see the module's docstring), so declared
# here without being mounted; its live fragment is an ordinary page of this group.
ACTORS_PAGE = PageSpec("GET", "/admin/actors", Action.ADMIN_READ, actors_page)


async def serve_actor_page() -> Response:
    return await serve_page(ACTORS_PAGE)


@pages.get("/admin/actors/live", action=Action.ADMIN_READ)
async def actors_live(page: PageReq) -> Response:
    return await _tree(page, "workspace/_actor_tree.html")
