"""URLs as errors may show them: without the parts that carry secrets."""

from __future__ import annotations

import urllib.parse

import httpx


def redact_url(url: httpx.URL | str) -> str:
    """``scheme://host[:port]/path`` and the query's keys: userinfo, query values and the
    fragment are left out (``https://api.test/v1?token=…``), so a message can be shown to
    anyone who can see the flow."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except httpx.InvalidURL:
        return _redact_unparsed(str(url))
    host = parsed.raw_host.decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    port = f":{parsed.port}" if parsed.port is not None else ""
    text = f"{parsed.scheme}://{host}{port}{parsed.raw_path.split(b'?')[0].decode('ascii')}"
    return text + _redacted_query(parsed.query.decode("ascii"))


def _redacted_query(query: str) -> str:
    if not query:
        return ""
    keys = [part.split("=", 1)[0] for part in query.split("&") if part]
    return "?" + "&".join(f"{key}=…" for key in keys)


def _redact_unparsed(text: str) -> str:
    # A URL httpx refuses: keep what urllib can find, never userinfo or query values.
    try:
        parts = urllib.parse.urlsplit(text)
        netloc = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "<invalid URL>"
    return f"{parts.scheme}://{netloc}{parts.path}{_redacted_query(parts.query)}"


def host_of_unparsed(text: str) -> str:
    """The host of a URL httpx refuses (``http://0177.0.0.1/``), or ``""``."""
    try:
        netloc = urllib.parse.urlsplit(text).netloc.rpartition("@")[2]
    except ValueError:
        return ""
    if netloc.startswith("["):
        return netloc.partition("]")[0] + "]"
    return netloc.partition(":")[0]


def scrub(text: str, url: httpx.URL) -> str:
    """``text`` (an error from below) without ``url``'s userinfo, query or fragment."""
    for secret in (url.userinfo.decode("ascii", "replace"), url.query.decode("ascii", "replace")):
        if secret:
            text = text.replace(secret, "…")
    if url.fragment:
        text = text.replace(url.fragment, "…")
    return text
