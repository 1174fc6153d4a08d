"""What an outbound request raises instead of an answer.

Exception
└── OutboundError              ``.code`` names the kind; ``str()`` is one line starting with it
    ├── OutboundRefused        OUTBOUND_REFUSED: the guard would not let the request leave
    ├── OutboundLimitExceeded  OUTBOUND_LIMIT: too large, too slow, too many redirects
    └── OutboundFailed         OUTBOUND_FAILED: the network failed (no such host, refused, TLS)

A message names URLs only in their redacted form (``redact_url``): no userinfo, no query
values, no fragment. It may be shown to whoever wrote the flow, who may not see its secrets.
"""

from __future__ import annotations


class OutboundError(Exception):
    """Base of the outbound errors. ``code`` is stable; ``str()`` is ``"<code>: <detail>"``."""

    code = "OUTBOUND_ERROR"

    def __init__(self, detail: str, *, url: str | None = None) -> None:
        self.detail = detail
        self.url = url  # redacted
        message = f"{self.code}: {detail}"
        if url:
            message += f"; url {url}"
        super().__init__(message)


class OutboundRefused(OutboundError):
    """The guard refused the request before connecting: its scheme, its host or an address
    the host resolves to. ``host`` is the host as written (``""`` when there is none),
    ``reason`` why, e.g. ``resolves to 169.254.169.254 (link-local)``."""

    code = "OUTBOUND_REFUSED"

    def __init__(
        self,
        reason: str,
        *,
        host: str = "",
        url: str | None = None,
        redirected_from: str | None = None,
    ) -> None:
        self.host = host
        self.reason = reason
        self.redirected_from = redirected_from
        detail = f"host {host!r} {reason}" if host else reason
        if redirected_from:
            detail += f", redirected from {redirected_from}"
        super().__init__(detail, url=url)


class OutboundLimitExceeded(OutboundError):
    """A limit of the policy was reached: ``limit`` is ``"size"``, ``"time"`` or
    ``"redirects"``."""

    code = "OUTBOUND_LIMIT"

    def __init__(self, limit: str, detail: str, *, url: str | None = None) -> None:
        self.limit = limit
        super().__init__(detail, url=url)


class OutboundFailed(OutboundError):
    """The request was allowed but did not get an answer: the name does not resolve, the
    connection is refused, TLS verification fails, the server breaks the protocol."""

    code = "OUTBOUND_FAILED"
