"""HTML rendering of the admin pages; every value from the tree is escaped."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#222}
ul{list-style:none;padding-left:1.2rem;border-left:1px solid #ccc}
li{margin:.3rem 0}.name{font-weight:600}.kind{color:#666}
.state{padding:0 .3rem;border-radius:3px;background:#eee}
.state.running{background:#d4f4d4}.state.failed,.state.stopped{background:#f8d7da}
.stats{color:#555;font-size:12px}form.inline{display:inline}
"""

_SHOWN = ("kind", "strategy", "state", "restarts", "mailbox")


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def _fmt(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{escape(str(k))}={escape(str(v))}" for k, v in value.items())
    return escape(str(value))


def _node(node: Mapping[str, Any]) -> str:
    name = escape(str(node.get("name", "?")))
    state = escape(str(node.get("state", "")))
    stats = " · ".join(
        f"{escape(key)}: {_fmt(node[key])}" for key in _SHOWN if key in node and key != "state"
    )
    children = node.get("children") or []
    inner = "".join(_node(c) for c in children if isinstance(c, Mapping))
    kids = f"<ul>{inner}</ul>" if inner else ""
    return (
        f'<li><span class=name>{name}</span> <span class="state {state}">{state}</span>'
        f" <span class=stats>{stats}</span>{kids}</li>"
    )


def render_tree(tree: Mapping[str, Any]) -> str:
    body = (
        "<h1>flow8 actor tree</h1>"
        '<p><a href="/admin/actors">refresh</a> · '
        '<form class=inline method=post action="/admin/logout">'
        "<button>log out</button></form></p>"
        f"<ul>{_node(tree) if tree else '<li>(no tree yet)</li>'}</ul>"
    )
    return _page("flow8 actors", body)


def render_login(next_path: str, error: str | None = None) -> str:
    message = f"<p role=alert style='color:#a00'>{escape(error)}</p>" if error else ""
    body = (
        "<h1>flow8 admin</h1>"
        f"{message}"
        '<form method=post action="/admin/login">'
        "<label>Admin token <input type=password name=token autocomplete=off required></label>"
        f'<input type=hidden name=next value="{escape(next_path)}">'
        " <button>Sign in</button></form>"
    )
    return _page("flow8 admin login", body)
