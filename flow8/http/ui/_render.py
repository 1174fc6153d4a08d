"""Rendering pages: one autoescaping Jinja2 environment over this package's templates, the
static files' cache-busting URLs, and the headers every page answer carries."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from quart import Response

STATIC_ROOT = Path(str(resources.files(__package__) / "static"))

# Pages load scripts and styles from this origin only; `connect-src 'self'` covers the live
# views' WebSocket to `/ws` (CSP Level 3 matches ws: and wss: on the page's own host).
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": PAGE_CSP,
    # Pages show one user's data: never kept by a shared cache, nor by the back button.
    "Cache-Control": "no-store",
}


@functools.cache
def static_version(path: str) -> str:
    """The first 12 hex digits of a static file's SHA-256: URLs carry it, so a file can be
    cached for a year and a changed file is fetched again."""
    return hashlib.sha256((STATIC_ROOT / path).read_bytes()).hexdigest()[:12]


def static_url(path: str) -> str:
    return f"/static/{path}?v={static_version(path)}"


def _when(value: float | datetime | None) -> str:
    """A timestamp as UTC text people read (the page's script shows local time on hover)."""
    if value is None:
        return "—"
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def _to_json(value: Any, indent: int | None = 2) -> str:
    """Pretty JSON for display (escaped by the template like any other text)."""
    return json.dumps(value, indent=indent, sort_keys=False, default=str, ensure_ascii=False)


def _json_attr(value: Any) -> Markup:
    """JSON for a `data-*` attribute or a `<script type=application/json>` block: every
    character that could end the attribute or the element is escaped."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    for raw, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("'", "\\u0027")):
        text = text.replace(raw, escaped)
    return Markup(text.replace('"', "&quot;"))


def _json_script(value: Any) -> Markup:
    text = json.dumps(value, default=str, ensure_ascii=False)
    for raw, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        text = text.replace(raw, escaped)
    return Markup(text)


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(__package__, "templates"),
        autoescape=True,  # every template, whatever its file name
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the test, not the page
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static_url"] = static_url
    env.filters["when"] = _when
    env.filters["duration"] = _duration
    env.filters["to_json"] = _to_json
    env.filters["json_attr"] = _json_attr
    env.filters["json_script"] = _json_script
    return env


def render_text(template: str, context: Mapping[str, Any]) -> str:
    return environment().get_template(template).render(context)


def html(body: str, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(body, status=status, headers={**PAGE_HEADERS, **(headers or {})})
