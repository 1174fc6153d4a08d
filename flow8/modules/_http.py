"""HTTP modules: curl (one request) and wget (a download into storage).

Both go through the step's ``request`` component, so through the outbound guard: a URL a
flow writes cannot reach the server's own network unless the company's request component
allows that host. Credentials (``credentialId``) are applied here, at the last moment, and
the play masks their texts in every record; ``basicAuth`` and ``bearerToken`` given as
arguments are masked too (``secrets_of``), but a credential keeps the secret out of the flow.

A play started with a W3C trace (a valid ``traceparent`` on the request that started it)
sends each request a ``traceparent`` of that trace with a fresh span id, unless the step's
``headers`` set one.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from flow8.components import basic_token

from ._registry import ModuleContext, ModuleSpec
from .exceptions import ModuleFailure

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
METHODS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
DEFAULT_API_KEY_HEADER = "X-API-Key"
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
_SCALARS = {
    "type": "object",
    "additionalProperties": {"type": ["string", "number", "boolean", "array"]},
}


def _idempotent(args: Mapping[str, Any]) -> bool:
    """A GET, HEAD or OPTIONS may run again; another method only with an Idempotency-Key
    (the server then recognises the repeat)."""
    if str(args.get("method") or "GET").upper() in SAFE_METHODS:
        return True
    headers = args.get("headers") or {}
    return isinstance(headers, Mapping) and any(
        str(k).lower() == "idempotency-key" for k in headers
    )


def _secrets(args: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    token = args.get("bearerToken")
    if isinstance(token, str):
        found.append(token)
    basic = args.get("basicAuth")
    if isinstance(basic, Mapping):
        user, password = str(basic.get("username", "")), str(basic.get("password", ""))
        found += [password, basic_token(user, password)]
    return found


def _with_query(url: str, query: Mapping[str, Any] | None) -> str:
    if not query:
        return url
    pairs: list[tuple[str, str]] = []
    for name, value in query.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            text = json.dumps(v) if isinstance(v, bool) else str(v)
            pairs.append((name, text))
    separator = "&" if urllib.parse.urlsplit(url).query else "?"
    return url + separator + urllib.parse.urlencode(pairs)


async def _credential_headers(
    ctx: ModuleContext, credential_id: str, headers: dict[str, str]
) -> tuple[dict[str, str], list[str]]:
    """The query parameters a credential adds (an apiKey sent as a query parameter), and
    the names of the headers it set (private: never sent on to another origin)."""
    type_, data = await ctx.credential(credential_id)
    if type_ == "basic":
        headers["Authorization"] = "Basic " + basic_token(data["username"], data["password"])
        return {}, ["authorization"]
    if type_ == "bearer":
        headers["Authorization"] = f"Bearer {data['token']}"
        return {}, ["authorization"]
    if type_ == "oauth2":
        token = data.get("accessToken")
        if not token:
            raise ModuleFailure("the oauth2 credential holds no access token yet")
        headers["Authorization"] = f"Bearer {token}"
        return {}, ["authorization"]
    if type_ == "apiKey":
        if data.get("query"):
            return {data["query"]: data["key"]}, []
        name = data.get("header") or DEFAULT_API_KEY_HEADER
        headers[name] = data["key"]
        return {}, [name.lower()]
    raise ModuleFailure(
        f"a {type_} credential cannot be applied to a request (use basic, bearer, apiKey or oauth2)"
    )


async def send(ctx: ModuleContext, args: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
    """The request the args describe, sent through the step's request component:
    (the component's answer, milliseconds it took)."""
    method = str(args.get("method") or "GET").upper()
    headers = {str(k): str(v) for k, v in (args.get("headers") or {}).items()}
    query = dict(args.get("query") or {})
    private: list[str] = []
    if args.get("credentialId"):
        extra_query, private = await _credential_headers(ctx, args["credentialId"], headers)
        query.update(extra_query)
    elif args.get("bearerToken"):
        headers["Authorization"] = f"Bearer {args['bearerToken']}"
    elif args.get("basicAuth"):
        basic = args["basicAuth"]
        headers["Authorization"] = "Basic " + basic_token(basic["username"], basic["password"])
    content: bytes | None = None
    lower = {k.lower() for k in headers}
    if args.get("bodyForm") is not None:
        content = urllib.parse.urlencode({k: str(v) for k, v in args["bodyForm"].items()}).encode()
        if "content-type" not in lower:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif args.get("body") is not None:
        body = args["body"]
        if isinstance(body, str):
            content = body.encode()
            if "content-type" not in lower:
                headers["Content-Type"] = "text/plain; charset=utf-8"
        else:
            content = json.dumps(body, separators=(",", ":")).encode()
            if "content-type" not in lower:
                headers["Content-Type"] = "application/json"
    if "traceparent" not in lower:  # the play's trace goes on, unless the step sets its own
        traceparent = ctx.traceparent()
        if traceparent is not None:
            headers["traceparent"] = traceparent
    request = await ctx.component("request")
    started = time.perf_counter()
    answer = await request.call(
        "send",
        {
            "method": method,
            "url": _with_query(str(args["url"]), query),
            "headers": headers,
            "content": content,
            "privateHeaders": private,
            "followRedirects": bool(args.get("followRedirects", True)),
            "timeoutSeconds": float(args.get("timeout") or 30),
        },
    )
    return answer, (time.perf_counter() - started) * 1000


def _body(answer: Mapping[str, Any], response_type: str | None) -> Any:
    content: bytes = answer["content"]
    content_type = answer["headers"].get("content-type", "")
    wanted = response_type or ("json" if "json" in content_type else "text")
    if wanted == "binary":
        return base64.b64encode(content).decode("ascii")
    text = content.decode("utf-8", "replace")
    if wanted == "json":
        if not content.strip():
            return None
        try:
            return json.loads(text)
        except ValueError:
            if response_type == "json":
                raise ModuleFailure(
                    f"the answer is not JSON (status {answer['statusCode']}, "
                    f"content-type {content_type or 'none'!r})"
                ) from None
            return text
    return text


async def _curl(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    answer, duration = await send(ctx, args)
    status = answer["statusCode"]
    body = _body(answer, args.get("responseType"))
    if status >= 400 and args.get("failOnStatus", True):
        snippet = body if isinstance(body, str) else json.dumps(body)
        raise ModuleFailure(f"HTTP {status} from {_where(answer['url'])}: {str(snippet)[:300]}")
    return {
        "statusCode": status,
        "headers": answer["headers"],
        "body": body,
        "duration": round(duration, 1),
    }


def _where(url: str) -> str:
    """A URL without its query and userinfo (they may carry keys) for an error message."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


async def _wget(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    answer, _ = await send(ctx, {**args, "method": "GET"})
    status = answer["statusCode"]
    if status >= 400:
        raise ModuleFailure(f"HTTP {status} from {_where(answer['url'])}: nothing was saved")
    storage = await ctx.component("storage")
    written = await storage.call("write", {"path": args["path"], "content": answer["content"]})
    mime = answer["headers"].get("content-type", "application/octet-stream").split(";")[0]
    return {"path": written["path"], "size": written["size"], "mimeType": mime.strip()}


_AUTH = {
    "credentialId": {"type": "string", "minLength": 1, "description": "a stored credential"},
    "basicAuth": {
        "type": "object",
        "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
        "required": ["username", "password"],
        "additionalProperties": False,
    },
    "bearerToken": {"type": "string", "minLength": 1},
}
_URL = {"type": "string", "minLength": 1, "maxLength": 8192}


def http_modules() -> list[ModuleSpec]:
    return [
        ModuleSpec(
            app_id="curl",
            category="http",
            description=(
                "Send an HTTP request through the company's request component (the outbound "
                "guard refuses internal addresses unless the component allows them). A JSON "
                "`body` is sent as JSON, a string as text, `bodyForm` as a form. `failOnStatus` "
                "(default true) fails the step on a status of 400 or more. GET, HEAD and "
                "OPTIONS are idempotent; other methods only with an Idempotency-Key header."
            ),
            args_schema={
                "type": "object",
                "properties": {
                    "method": {"enum": METHODS},
                    "url": _URL,
                    "headers": _STRINGS,
                    "query": _SCALARS,
                    "body": {},
                    "bodyForm": _SCALARS,
                    "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
                    "followRedirects": {"type": "boolean"},
                    "responseType": {"enum": ["json", "text", "binary"]},
                    "failOnStatus": {"type": "boolean"},
                    **_AUTH,
                },
                "required": ["url"],
                "additionalProperties": False,
            },
            output_schema={
                "type": "object",
                "properties": {
                    "statusCode": {"type": "integer"},
                    "headers": {"type": "object"},
                    "body": {},
                    "duration": {"type": "number", "description": "milliseconds"},
                },
            },
            idempotent=False,
            idempotent_when=_idempotent,
            secrets_of=_secrets,
            components=("request",),
            run=_curl,
            args_check=_one_auth,
            example={
                "method": "POST",
                "url": "https://api.example.com/v1/orders",
                "body": {"sku": "{{ $prev.order.sku }}", "quantity": 1},
                "credentialId": "<credential id>",
            },
        ),
        ModuleSpec(
            app_id="wget",
            category="http",
            description=(
                "Download `url` into the company's storage at `path` (through the request "
                "component's guard, then the storage component)."
            ),
            args_schema={
                "type": "object",
                "properties": {
                    "url": _URL,
                    "path": {"type": "string", "minLength": 1, "maxLength": 1024},
                    "headers": _STRINGS,
                    "query": _SCALARS,
                    "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
                    **_AUTH,
                },
                "required": ["url", "path"],
                "additionalProperties": False,
            },
            output_schema={
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "size": {"type": "integer"},
                    "mimeType": {"type": "string"},
                },
            },
            idempotent=True,  # the same download overwrites the same file
            secrets_of=_secrets,
            components=("request", "storage"),
            run=_wget,
            args_check=_one_auth,
            example={"url": "https://example.com/report.csv", "path": "reports/today.csv"},
        ),
    ]


def _one_auth(args: Mapping[str, Any]) -> list[tuple[str, str]]:
    given = [k for k in ("credentialId", "basicAuth", "bearerToken") if k in args]
    if len(given) > 1:
        return [
            ("", f"give one of credentialId, basicAuth and bearerToken, not {', '.join(given)}")
        ]
    if "body" in args and "bodyForm" in args:
        return [("", "give either 'body' or 'bodyForm', not both")]
    return []
