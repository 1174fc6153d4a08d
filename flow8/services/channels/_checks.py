"""Validation of channel and route bodies: the stored fields, or ``InvalidChannel`` listing
every problem at once, each naming its field (camelCase, as the API spells it). Messages
never repeat a secret's value."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ._models import AuthMode, ChannelKind, HmacStyle, ResponseMode
from .exceptions import InvalidChannel, Problem

NAME_MAX = 128
DESCRIPTION_MAX = 1000
TOKEN_MIN = 16
SECRET_MIN = 8
SECRET_MAX = 1000
PREFIX_MAX = 32
PATH_MAX = 500
TARGETS_MAX = 10
TIMEOUT_MAX = 300.0
MAX_CONNECTIONS_MAX = 10_000
RATE_MAX = 100_000.0
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
HMAC_ALGORITHMS = ("sha256", "sha1")
# The MCP server's own tools: a route's toolName may not shadow one.
BUILTIN_TOOLS = frozenset(
    {
        "list_flows",
        "get_flow",
        "run_flow",
        "get_play",
        "list_plays",
        "list_modules",
        "approve_play",
        "reject_play",
    }
)
# The header each timestamped style signs into, when the body names none.
_STYLE_HEADERS = {HmacStyle.STRIPE: "Stripe-Signature", HmacStyle.SLACK: "X-Slack-Signature"}

CHANNEL_FIELDS = (
    "name",
    "kind",
    "authMode",
    "authToken",
    "hmac",
    "enabled",
    "maxConnections",
    "ratePerSecond",
)
HMAC_FIELDS = ("header", "secret", "algorithm", "prefix", "style")
ROUTE_FIELDS = (
    "name",
    "httpMethod",
    "path",
    "targetFlowIds",
    "responseMode",
    "timeoutSeconds",
    "toolName",
    "description",
    "requireApproval",
)

_TOKEN = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces: it travels in a header
_HEADER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,99}$")
_TOOL = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]{0,63})\}$")
_LITERAL = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@%-]+$")


def _name(data: Mapping[str, Any], problems: list[Problem]) -> str | None:
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(Problem("name", "is required: a name (text, not blank)"))
        return None
    if len(name) > NAME_MAX:
        problems.append(Problem("name", f"is longer than {NAME_MAX} characters"))
        return None
    return name.strip()


def _unknown(data: Mapping[str, Any], known: tuple[str, ...], prefix: str = "") -> list[Problem]:
    return [
        Problem(f"{prefix}{k}", f"is not allowed (unknown field; known: {', '.join(known)})")
        for k in sorted(set(data) - set(known))
    ]


def check_channel(data: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """The fields a create (or, ``partial``, an update) body sets, in stored form:
    ``name``, ``kind``, ``auth_mode``, ``enabled``, ``max_connections``, ``rate_per_second``,
    ``auth_token`` (None: remove), ``hmac`` (a dict of the given HMAC fields; its ``secret``
    None: remove). Whether the auth fields fit the mode is checked on the merged channel
    (:func:`check_auth`)."""
    if not isinstance(data, Mapping):
        raise InvalidChannel([Problem("(body)", "must be a JSON object")])
    problems = _unknown(data, CHANNEL_FIELDS)
    out: dict[str, Any] = {}
    if "name" in data or not partial:
        name = _name(data, problems)
        if name is not None:
            out["name"] = name
    if "kind" in data or not partial:
        kind = data.get("kind")
        try:
            out["kind"] = ChannelKind(str(kind))
        except ValueError:
            problems.append(Problem("kind", "must be one of: http, ws, tcp, mcp"))
    if "authMode" in data or not partial:
        mode = data.get("authMode", "public")
        try:
            out["auth_mode"] = AuthMode(mode)
        except ValueError:
            problems.append(Problem("authMode", "must be one of: public, header_token, hmac"))
    if "authToken" in data:
        token = data["authToken"]
        if token is None:
            out["auth_token"] = None
        elif not isinstance(token, str) or not _TOKEN.match(token):
            problems.append(
                Problem("authToken", "must be text of printable characters without spaces")
            )
        elif not TOKEN_MIN <= len(token) <= SECRET_MAX:
            problems.append(
                Problem("authToken", f"must be {TOKEN_MIN} to {SECRET_MAX} characters long")
            )
        else:
            out["auth_token"] = token
    if "hmac" in data:
        hmac = data["hmac"]
        if hmac is None:
            out["hmac"] = None
        elif not isinstance(hmac, Mapping):
            problems.append(Problem("hmac", "must be an object: {header, secret, algorithm}"))
        else:
            out["hmac"] = _check_hmac(hmac, problems)
    if "enabled" in data or not partial:
        enabled = data.get("enabled", True)
        if not isinstance(enabled, bool):
            problems.append(Problem("enabled", "must be true or false"))
        else:
            out["enabled"] = enabled
    if data.get("maxConnections") is not None:  # null: the configured default (or kept)
        limit = data["maxConnections"]
        if isinstance(limit, bool) or not isinstance(limit, int):
            problems.append(Problem("maxConnections", "must be a whole number"))
        elif not 1 <= limit <= MAX_CONNECTIONS_MAX:
            problems.append(Problem("maxConnections", f"must be 1 to {MAX_CONNECTIONS_MAX}"))
        else:
            out["max_connections"] = limit
    if data.get("ratePerSecond") is not None:
        rate = data["ratePerSecond"]
        if isinstance(rate, bool) or not isinstance(rate, int | float):
            problems.append(Problem("ratePerSecond", "must be a number"))
        elif not (math.isfinite(rate) and 0 < rate <= RATE_MAX):
            problems.append(Problem("ratePerSecond", f"must be above 0 and at most {RATE_MAX:g}"))
        else:
            out["rate_per_second"] = float(rate)
    if problems:
        raise InvalidChannel(problems)
    return out


def _check_hmac(hmac: Mapping[str, Any], problems: list[Problem]) -> dict[str, Any]:
    problems.extend(_unknown(hmac, HMAC_FIELDS, "hmac."))
    out: dict[str, Any] = {}
    if "header" in hmac:
        header = hmac["header"]
        if not isinstance(header, str) or not _HEADER.match(header):
            problems.append(Problem("hmac.header", "must be a header name (letters, digits, '-')"))
        else:
            out["header"] = header
    if "secret" in hmac:
        secret = hmac["secret"]
        if secret is None:
            out["secret"] = None
        elif not isinstance(secret, str):
            problems.append(Problem("hmac.secret", "must be text"))
        elif not SECRET_MIN <= len(secret) <= SECRET_MAX:
            problems.append(
                Problem("hmac.secret", f"must be {SECRET_MIN} to {SECRET_MAX} characters long")
            )
        else:
            out["secret"] = secret
    if "algorithm" in hmac:
        if hmac["algorithm"] not in HMAC_ALGORITHMS:
            problems.append(Problem("hmac.algorithm", "must be sha256 or sha1"))
        else:
            out["algorithm"] = hmac["algorithm"]
    if "prefix" in hmac:
        prefix = hmac["prefix"]
        if prefix is None:
            prefix = ""
        if not isinstance(prefix, str) or len(prefix) > PREFIX_MAX or not prefix.isprintable():
            problems.append(
                Problem("hmac.prefix", f"must be text of at most {PREFIX_MAX} characters")
            )
        else:
            out["prefix"] = prefix
    if "style" in hmac:
        try:
            out["style"] = HmacStyle(hmac["style"])
        except ValueError:
            problems.append(Problem("hmac.style", "must be one of: plain, stripe, slack"))
    return out


def merge_hmac(stored: Mapping[str, Any] | None, change: Mapping[str, Any]) -> dict[str, Any]:
    """The HMAC settings after a change (absent keys keep, a null secret removes it), with the
    defaults filled in: algorithm sha256, style plain, the style's own header."""
    merged: dict[str, Any] = {**(stored or {}), **change}
    merged.setdefault("algorithm", "sha256")
    merged.setdefault("prefix", "")
    style = HmacStyle(merged.get("style") or HmacStyle.PLAIN)
    merged["style"] = style
    if not merged.get("header") and style in _STYLE_HEADERS:
        merged["header"] = _STYLE_HEADERS[style]
    return merged


def check_auth(
    mode: AuthMode, token: str | None, hmac: Mapping[str, Any] | None, given: Mapping[str, Any]
) -> None:
    """That the merged auth fields fit the mode. ``given``: the body, to refuse a secret sent
    for a mode that does not use it (it would be stored for nothing)."""
    problems: list[Problem] = []
    if mode is AuthMode.HEADER_TOKEN and not token:
        problems.append(
            Problem(
                "authToken",
                f"is required when authMode is header_token ({TOKEN_MIN} characters or more)",
            )
        )
    if mode is not AuthMode.HEADER_TOKEN and given.get("authToken") is not None:
        problems.append(Problem("authToken", "is only used when authMode is header_token"))
    if mode is AuthMode.HMAC:
        if hmac is None:
            problems.append(
                Problem("hmac", "is required when authMode is hmac: {header, secret, algorithm}")
            )
        else:
            if not hmac.get("secret"):
                problems.append(Problem("hmac.secret", "is required when authMode is hmac"))
            if not hmac.get("header"):
                problems.append(
                    Problem(
                        "hmac.header", "is required for the plain style (e.g. X-Hub-Signature-256)"
                    )
                )
    elif given.get("hmac") is not None:
        problems.append(Problem("hmac", "is only used when authMode is hmac"))
    if problems:
        raise InvalidChannel(problems)


def route_pattern(path: str) -> str:
    """The path with every ``{param}`` as ``{}``: two routes with the same pattern (and
    method) match the same requests."""
    return "/".join("{}" if _PARAM.match(s) else s for s in path.split("/"))


def check_path(path: Any, problems: list[Problem]) -> str | None:
    if not isinstance(path, str) or not path.startswith("/"):
        problems.append(Problem("path", 'must start with "/" (e.g. /orders/{id})'))
        return None
    if len(path) > PATH_MAX:
        problems.append(Problem("path", f"is longer than {PATH_MAX} characters"))
        return None
    if path == "/":
        return path
    params: list[str] = []
    for segment in path[1:].split("/"):
        if not segment:
            problems.append(Problem("path", "has an empty segment ('//' or a trailing '/')"))
            return None
        found = _PARAM.match(segment)
        if found is not None:
            params.append(found.group(1))
        elif "{" in segment or "}" in segment:
            problems.append(
                Problem("path", f"segment {segment!r}: a parameter is a whole segment {{name}}")
            )
            return None
        elif not _LITERAL.match(segment):
            problems.append(
                Problem("path", f"segment {segment!r} has characters a URL path cannot")
            )
            return None
    if len(set(params)) != len(params):
        problems.append(Problem("path", "names a parameter twice"))
        return None
    return path


def check_route(
    data: Mapping[str, Any], kind: ChannelKind, *, partial: bool = False
) -> dict[str, Any]:
    """The stored fields (snake_case) of a route create (or, ``partial``, update) body for a
    channel of ``kind``. Uniqueness and target flows are checked by the service."""
    if not isinstance(data, Mapping):
        raise InvalidChannel([Problem("(body)", "must be a JSON object")])
    problems = _unknown(data, ROUTE_FIELDS)
    out: dict[str, Any] = {}
    if "name" in data or not partial:
        name = _name(data, problems)
        if name is not None:
            out["name"] = name
    if "httpMethod" in data or not partial:
        method = data.get("httpMethod", "POST")
        if not isinstance(method, str) or method.upper() not in HTTP_METHODS:
            problems.append(Problem("httpMethod", f"must be one of: {', '.join(HTTP_METHODS)}"))
        else:
            out["http_method"] = method.upper()
    if "path" in data or not partial:
        path = check_path(data.get("path", "/"), problems)
        if path is not None:
            out["path"] = path
    if "targetFlowIds" in data or not partial:
        targets = data.get("targetFlowIds")
        if (
            not isinstance(targets, list)
            or not targets
            or not all(isinstance(t, str) and t for t in targets)
        ):
            problems.append(Problem("targetFlowIds", f"is required: 1 to {TARGETS_MAX} flow ids"))
        elif len(targets) > TARGETS_MAX:
            problems.append(Problem("targetFlowIds", f"has more than {TARGETS_MAX} flows"))
        elif len(set(targets)) != len(targets):
            problems.append(Problem("targetFlowIds", "names a flow twice"))
        else:
            out["target_flow_ids"] = list(targets)
    if "responseMode" in data or not partial:
        try:
            out["response_mode"] = ResponseMode(data.get("responseMode", "sync"))
        except ValueError:
            problems.append(Problem("responseMode", "must be sync or async"))
    if "timeoutSeconds" in data or not partial:
        timeout = data.get("timeoutSeconds", 30.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            problems.append(Problem("timeoutSeconds", "must be a number of seconds"))
        elif not (math.isfinite(timeout) and 0 < timeout <= TIMEOUT_MAX):
            problems.append(
                Problem("timeoutSeconds", f"must be above 0 and at most {TIMEOUT_MAX:g}")
            )
        else:
            out["timeout_seconds"] = float(timeout)
    if "toolName" in data or not partial:
        tool = data.get("toolName")
        if kind is ChannelKind.MCP:
            if not isinstance(tool, str) or not _TOOL.match(tool):
                problems.append(
                    Problem(
                        "toolName",
                        "is required for mcp channels: 1 to 64 letters, digits, '_' or '-'",
                    )
                )
            elif tool in BUILTIN_TOOLS:
                problems.append(
                    Problem("toolName", f"{tool!r} is a built-in tool of the MCP server")
                )
            else:
                out["tool_name"] = tool
        elif tool is not None:
            problems.append(Problem("toolName", "is only for routes of mcp channels"))
        else:
            out["tool_name"] = None
    if "description" in data or not partial:
        description = data.get("description") or ""
        if not isinstance(description, str):
            problems.append(Problem("description", "must be text"))
        elif len(description) > DESCRIPTION_MAX:
            problems.append(Problem("description", f"is longer than {DESCRIPTION_MAX} characters"))
        else:
            out["description"] = description
    if "requireApproval" in data or not partial:
        approval = data.get("requireApproval", False)
        if not isinstance(approval, bool):
            problems.append(Problem("requireApproval", "must be true or false"))
        elif approval and kind is not ChannelKind.MCP:
            problems.append(Problem("requireApproval", "is only for routes of mcp channels"))
        else:
            out["require_approval"] = approval
    if problems:
        raise InvalidChannel(problems)
    return out
