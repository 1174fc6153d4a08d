"""Client side of the running server: where it answers, and ``/admin/actors`` (fetch the live
actor tree and render it for a terminal)."""

from __future__ import annotations

from typing import Any

import httpx

from flow8.config import Settings

# Addresses a server listens on for every interface; a client on this host reaches it on the
# loopback of the same family.
_ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def server_url(settings: Settings) -> str:
    """The base URL a client on this host reaches the server at: the host and port
    ``flow8 serve`` listens on, from the same settings (``conf/config.yml``, the
    environment, ``.env``)."""
    host = _ANY_ADDRESS.get(settings.server_host, settings.server_host)
    if ":" in host:  # an IPv6 literal is bracketed in a URL, as in the server's bind
        host = f"[{host}]"
    return f"http://{host}:{settings.server_port}"


def fetch_actor_tree(base_url: str, admin_token: str, timeout: float = 5.0) -> dict[str, Any]:
    """GET ``/admin/actors`` as JSON; raises ``httpx.HTTPError`` on failure or a non-2xx answer."""
    response = httpx.get(
        f"{base_url.rstrip('/')}/admin/actors",
        headers={"Authorization": f"Bearer {admin_token}", "Accept": "application/json"},
        timeout=timeout,
    )
    response.raise_for_status()
    tree: dict[str, Any] = response.json()
    return tree


def render_tree(
    node: dict[str, Any], prefix: str = "", last: bool = True, root: bool = True
) -> str:
    """One line per actor, drawn as a tree: name, kind/strategy, state, restarts, mailbox."""
    connector = "" if root else ("└── " if last else "├── ")
    lines = [f"{prefix}{connector}{_describe(node)}"]
    children: list[dict[str, Any]] = node.get("children") or []
    child_prefix = prefix if root else prefix + ("    " if last else "│   ")
    for index, child in enumerate(children):
        lines.append(render_tree(child, child_prefix, index == len(children) - 1, root=False))
    return "\n".join(lines)


def _describe(node: dict[str, Any]) -> str:
    kind = node.get("kind", "?")
    if node.get("strategy"):
        kind = f"{kind} {node['strategy']}"
    parts = [str(node.get("name", "?")), f"[{kind}]", str(node.get("state", "?"))]
    if node.get("restarts"):
        parts.append(f"restarts={node['restarts']}")
    mailbox = node.get("mailbox")
    if isinstance(mailbox, dict) and mailbox.get("capacity"):
        parts.append(f"mailbox={mailbox.get('depth', 0)}/{mailbox['capacity']}")
    return "  ".join(parts)
