"""`GET /metrics`: the instance's Prometheus metrics (`flow8.services.metrics`), for a scraper
holding the admin token.

The same gate as `/admin/*` (`AdminGate`), bearer only: no token configured, or an app built
without metrics, answers 404 (the endpoint does not exist); no token sent 401, a wrong one 403,
and wrong guesses count against the same per-address limit as the admin sign-in. The metrics
name no company, but they do tell how busy the instance is: not for anyone without the token.
"""

from __future__ import annotations

from quart import Blueprint, Response, request

from flow8.services.identity import address_key

from ._api import client_ip
from ._context import app
from .exceptions import Forbidden, NotFound, TooManyRequests

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
async def metrics() -> Response:
    flow8 = app()
    gate, metrics = flow8.admin_gate, flow8.deps.metrics
    if metrics is None or not gate.enabled:
        raise NotFound("not found")
    authorization = request.headers.get("Authorization")
    ip = client_ip()
    wait = gate.failures.blocked_for(address_key(ip)) if authorization else 0.0
    if wait > 0:
        raise TooManyRequests("too many failed admin sign-ins; try later", retry_after=wait)
    try:
        gate.check(authorization, None)  # the admin cookie is scoped to /admin: never sent here
    except Forbidden:
        gate.failures.hit(address_key(ip))
        raise
    body = await metrics.render()
    headers = {"Content-Type": metrics.content_type, "Cache-Control": "no-store"}
    return Response(body, status=200, headers=headers)
