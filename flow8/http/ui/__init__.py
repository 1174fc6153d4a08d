"""The browser UI: server-rendered pages (Jinja2, autoescaped) with htmx for partial updates
and small script modules where a page is live. Pages call the same services as the REST API,
with the same roles, tenant scope, CSRF token and audit; see `README.md` beside this file."""

from __future__ import annotations

from quart import Quart

from . import (
    _audit_pages,
    _channel_pages,
    _component_pages,
    _flow_pages,
    _member_pages,
    _platform_pages,
    _play_pages,
    _schedule_pages,
    _session_pages,
    _static,
    _usage_pages,
    _workspace_pages,
)
from ._pages import Pages

PAGE_GROUPS: tuple[Pages, ...] = (
    _session_pages.pages,
    _flow_pages.pages,
    _play_pages.pages,
    _workspace_pages.pages,
    _member_pages.pages,
    _audit_pages.pages,
    _platform_pages.pages,
    _component_pages.pages,
    _channel_pages.pages,
    _schedule_pages.pages,
    _usage_pages.pages,
)


def install(application: Quart) -> None:
    _static.install(application)
    for group in PAGE_GROUPS:
        group.mount(application)


__all__ = ["PAGE_GROUPS", "install"]
