"""`/static/<path>`: the UI's own files and the vendored libraries. A request that names the
file's current version (`?v=`, as `static_url` writes it) may be cached for a year; any other
for five minutes. Only files inside the static folder are served."""

from __future__ import annotations

import mimetypes

from quart import Quart, Response, request

from ..exceptions import NotFound
from ._render import STATIC_ROOT, static_version

_YEAR = "public, max-age=31536000, immutable"
_BRIEFLY = "public, max-age=300"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


async def _static(path: str) -> Response:
    target = (STATIC_ROOT / path).resolve()
    if not target.is_relative_to(STATIC_ROOT.resolve()) or not target.is_file():
        raise NotFound("no such file")
    relative = target.relative_to(STATIC_ROOT.resolve()).as_posix()
    cache = _YEAR if request.args.get("v") == static_version(relative) else _BRIEFLY
    kind = _TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "text/plain"
    return Response(target.read_bytes(), headers={"Content-Type": kind, "Cache-Control": cache})


def install(application: Quart) -> None:
    application.add_url_rule(
        "/static/<path:path>", endpoint="ui.static", view_func=_static, methods=["GET"]
    )
