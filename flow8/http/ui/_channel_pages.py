"""Channels pages: the company's channels (kind, port, auth mode, enabled, the address a
caller uses), a channel's routes with their target flows, and the forms and actions that
change them. The bearer token and HMAC secret are typed into password inputs and never
shown back. Same service calls, roles and audit entries as `_channel_routes.py`."""

from __future__ import annotations

from typing import Any

from quart import Response
from werkzeug.datastructures import MultiDict

from flow8.services.channels import Channel, ChannelKind, Route
from flow8.services.identity import Action

from .._api import audit_change
from .._context import channel_service
from ..exceptions import NotFound
from ._pages import PageReq, Pages, redirect, render
from ._platform_pages import act, attempt, flow_choices, flow_name, number

pages = Pages("channels")

KINDS = ("http", "ws", "tcp", "mcp")
AUTH_MODES = (
    ("public", "public (anyone who can reach the port)"),
    ("header_token", "header_token (Authorization: Bearer <token>)"),
    ("hmac", "hmac (a signature over the body)"),
)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def listen_address(page: PageReq, channel: Channel, route: Route | None = None) -> str:
    """Where a caller reaches the channel (or the route): this server's host name as the
    browser reached it, the channel's own port, and the route's path (http)."""
    host = page.headers.get("Host", "localhost")
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if channel.kind is ChannelKind.MCP or channel.port is None:
        return ""
    where = f"{hostname}:{channel.port}"
    if channel.kind is ChannelKind.HTTP:
        return f"http://{where}{route.path if route is not None else '/'}"
    if channel.kind is ChannelKind.WS:
        return f"ws://{where}/"
    return where


# -- channels --------------------------------------------------------------------------------


def _channel_body(form: MultiDict[str, str], *, editing: bool) -> dict[str, Any]:
    """The API body a channel form stands for. A secret left empty is absent (kept when
    editing); the fields of an auth mode not chosen are not sent."""
    mode = form.get("authMode", "public")
    body: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "authMode": mode,
        "enabled": form.get("enabled") == "on",
    }
    if not editing:
        body["kind"] = form.get("kind", "")
    for key in ("maxConnections", "ratePerSecond"):
        value = number(form.get(key))
        if value is not None:
            body[key] = value
    if mode == "header_token" and form.get("authToken"):
        body["authToken"] = form["authToken"]
    if mode == "hmac":
        hmac: dict[str, Any] = {
            k: form.get(f"hmac.{k}", "").strip()
            for k in ("header", "algorithm", "style")
            if form.get(f"hmac.{k}", "").strip()
        }
        hmac["prefix"] = form.get("hmac.prefix", "")
        if form.get("hmac.secret"):
            hmac["secret"] = form["hmac.secret"]
        body["hmac"] = hmac
    return body


def _channel_values(channel: Channel) -> dict[str, Any]:
    hmac = channel.hmac
    return {
        "name": channel.name,
        "kind": channel.kind.value,
        "authMode": channel.auth_mode.value,
        "enabled": channel.enabled,
        "maxConnections": channel.max_connections,
        "ratePerSecond": channel.rate_per_second,
        "hmac.header": hmac.header if hmac else "",
        "hmac.algorithm": hmac.algorithm if hmac else "sha256",
        "hmac.prefix": hmac.prefix if hmac else "",
        "hmac.style": hmac.style.value if hmac else "plain",
    }


def _entered(form: MultiDict[str, str]) -> dict[str, Any]:
    """What was typed, shown again beside its problems: never the token or the secret."""
    values: dict[str, Any] = {
        k: v for k, v in form.items() if k not in ("authToken", "hmac.secret", "csrf_token")
    }
    values["enabled"] = form.get("enabled") == "on"
    return values


def _channel_form(
    page: PageReq, channel: Channel | None, values: dict[str, Any], errors: dict[str, str]
) -> Response:
    return render(
        page,
        "platform/channel_form.html",
        status=422 if errors else 200,
        channel=channel,
        values=values,
        errors=errors,
        kinds=KINDS,
        auth_modes=AUTH_MODES,
    )


@pages.get("/channels", action=Action.READ)
async def channels(page: PageReq) -> Response:
    found = await channel_service().list(page.company_id)
    addresses = {c.id: listen_address(page, c) for c in found}
    return render(page, "platform/channels.html", channels=found, addresses=addresses)


@pages.get("/channels/new", action=Action.CHANNEL_WRITE)
async def new_channel(page: PageReq) -> Response:
    values = {"kind": "http", "authMode": "public", "enabled": True}
    return _channel_form(page, None, values, {})


@pages.post("/channels/new", action=Action.CHANNEL_WRITE)
async def create_channel(page: PageReq) -> Response:
    made, errors = await attempt(
        channel_service().create(page.company_id, _channel_body(page.form, editing=False))
    )
    if made is None:
        return _channel_form(page, None, _entered(page.form), errors)
    audit_change(page.as_req(), "channel_created", "channel", made.id, after=made.summary())
    return redirect(page, f"/channels/{made.id}")


@pages.get("/channels/<channel_id>/edit", action=Action.CHANNEL_WRITE)
async def edit_channel(page: PageReq, channel_id: str) -> Response:
    found = await act(channel_service().get(page.company_id, channel_id))
    return _channel_form(page, found, _channel_values(found), {})


async def _update(page: PageReq, channel_id: str, change: dict[str, Any]) -> Channel:
    before, after = await channel_service().update(page.company_id, channel_id, change)
    if after is not before:
        audit_change(
            page.as_req(),
            "channel_updated",
            "channel",
            channel_id,
            before=before.summary(),
            after=after.summary(),
        )
    return after


@pages.post("/channels/<channel_id>/edit", action=Action.CHANNEL_WRITE)
async def update_channel(page: PageReq, channel_id: str) -> Response:
    found = await act(channel_service().get(page.company_id, channel_id))
    change = _channel_body(page.form, editing=True)
    _, errors = await attempt(_update(page, channel_id, change))
    if errors:
        return _channel_form(page, found, {**_entered(page.form), "kind": found.kind.value}, errors)
    return redirect(page, f"/channels/{channel_id}")


@pages.post("/channels/<channel_id>/enable", action=Action.CHANNEL_WRITE)
async def enable_channel(page: PageReq, channel_id: str) -> Response:
    await act(_update(page, channel_id, {"enabled": True}))
    return redirect(page, "/channels")


@pages.post("/channels/<channel_id>/disable", action=Action.CHANNEL_WRITE)
async def disable_channel(page: PageReq, channel_id: str) -> Response:
    await act(_update(page, channel_id, {"enabled": False}))
    return redirect(page, "/channels")


@pages.post("/channels/<channel_id>/delete", action=Action.CHANNEL_WRITE)
async def delete_channel(page: PageReq, channel_id: str) -> Response:
    gone = await act(channel_service().delete(page.company_id, channel_id))
    audit_change(page.as_req(), "channel_deleted", "channel", channel_id, before=gone.summary())
    return redirect(page, "/channels")


# -- routes ----------------------------------------------------------------------------------


def _route_body(form: MultiDict[str, str], kind: ChannelKind) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "targetFlowIds": [f for f in form.getlist("targetFlowIds") if f],
        "responseMode": form.get("responseMode", "sync"),
        "description": form.get("description", ""),
    }
    timeout = number(form.get("timeoutSeconds"))
    if timeout is not None:
        body["timeoutSeconds"] = timeout
    if kind is ChannelKind.HTTP:
        body["httpMethod"] = form.get("httpMethod", "POST")
        body["path"] = form.get("path", "").strip() or "/"
    if kind is ChannelKind.MCP:
        body["toolName"] = form.get("toolName", "").strip()
        body["requireApproval"] = form.get("requireApproval") == "on"
    return body


def _route_values(route: Route) -> dict[str, Any]:
    return {
        "name": route.name,
        "targetFlowIds": list(route.target_flow_ids),
        "responseMode": route.response_mode.value,
        "timeoutSeconds": route.timeout_seconds,
        "httpMethod": route.http_method,
        "path": route.path,
        "toolName": route.tool_name or "",
        "description": route.description,
        "requireApproval": route.require_approval,
    }


def _route_entered(form: MultiDict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {k: v for k, v in form.items() if k != "csrf_token"}
    values["targetFlowIds"] = form.getlist("targetFlowIds")
    values["requireApproval"] = form.get("requireApproval") == "on"
    return values


_NEW_ROUTE = {"responseMode": "sync", "timeoutSeconds": 30, "httpMethod": "POST", "path": "/"}


async def _channel_page(
    page: PageReq,
    channel: Channel,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    editing: Route | None = None,
) -> Response:
    """The channel with its routes, and the route form (a new route's, or `editing`'s)."""
    values = values if values is not None else dict(_NEW_ROUTE)
    choices = await flow_choices(
        page, values.get("targetFlowIds", ()), prefix=page.args.get("flows")
    )
    names = dict(choices)
    for target in sorted({t for r in channel.routes for t in r.target_flow_ids} - set(names)):
        names[target] = await flow_name(page, target)
    return render(
        page,
        "platform/channel.html" if editing is None else "platform/route_form.html",
        status=422 if errors else 200,
        channel=channel,
        address=listen_address(page, channel),
        addresses={r.id: listen_address(page, channel, r) for r in channel.routes},
        flow_names=names,
        flow_choices=choices,
        methods=METHODS,
        route=editing,
        values=values,
        errors=errors or {},
    )


@pages.get("/channels/<channel_id>", action=Action.READ)
async def channel(page: PageReq, channel_id: str) -> Response:
    found = await act(channel_service().get(page.company_id, channel_id))
    return await _channel_page(page, found)


@pages.post("/channels/<channel_id>/routes", action=Action.CHANNEL_WRITE)
async def create_route(page: PageReq, channel_id: str) -> Response:
    found = await act(channel_service().get(page.company_id, channel_id))
    body = _route_body(page.form, found.kind)
    made, errors = await attempt(channel_service().add_route(page.company_id, channel_id, body))
    if made is None:
        return await _channel_page(page, found, values=_route_entered(page.form), errors=errors)
    route = made[1]
    audit_change(
        page.as_req(),
        "channel_route_created",
        "channel",
        channel_id,
        after=route.summary(),
        details={"routeId": route.id},
    )
    return redirect(page, f"/channels/{channel_id}#r-{route.id}")


def _route_of(channel: Channel, route_id: str) -> Route:
    for route in channel.routes:
        if route.id == route_id:
            return route
    raise NotFound("route not found", code="ROUTE_NOT_FOUND")


@pages.get("/channels/<channel_id>/routes/<route_id>/edit", action=Action.CHANNEL_WRITE)
async def edit_route(page: PageReq, channel_id: str, route_id: str) -> Response:
    found = await act(channel_service().get(page.company_id, channel_id))
    route = _route_of(found, route_id)
    return await _channel_page(page, found, values=_route_values(route), editing=route)


async def _update_route(
    page: PageReq, channel_id: str, route_id: str, change: dict[str, Any]
) -> Route:
    before, after = await channel_service().update_route(
        page.company_id, channel_id, route_id, change
    )
    if after is not before:
        audit_change(
            page.as_req(),
            "channel_route_updated",
            "channel",
            channel_id,
            before=before.summary(),
            after=after.summary(),
            details={"routeId": route_id},
        )
    return after


@pages.post("/channels/<channel_id>/routes/<route_id>/edit", action=Action.CHANNEL_WRITE)
async def update_route(page: PageReq, channel_id: str, route_id: str) -> Response:
    found = await act(channel_service().get(page.company_id, channel_id))
    route = _route_of(found, route_id)
    change = _route_body(page.form, found.kind)
    _, errors = await attempt(_update_route(page, channel_id, route_id, change))
    if errors:
        values = _route_entered(page.form)
        return await _channel_page(page, found, values=values, errors=errors, editing=route)
    return redirect(page, f"/channels/{channel_id}#r-{route_id}")


@pages.post("/channels/<channel_id>/routes/<route_id>/delete", action=Action.CHANNEL_WRITE)
async def delete_route(page: PageReq, channel_id: str, route_id: str) -> Response:
    gone = await act(channel_service().delete_route(page.company_id, channel_id, route_id))
    audit_change(
        page.as_req(),
        "channel_route_deleted",
        "channel",
        channel_id,
        before=gone.summary(),
        details={"routeId": route_id},
    )
    return redirect(page, f"/channels/{channel_id}")
