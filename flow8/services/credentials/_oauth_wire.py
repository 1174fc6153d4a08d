"""The OAuth2 wire: PKCE, the authorize URL, and token requests (RFC 6749 sections 4.1, 4.4
and 6, RFC 7636).

Token requests leave through the outbound guard (`flow8.outbound`) under the policy the
server gives credentials, like every other outbound HTTP request. The client authenticates
with `client_secret_post` (its id and secret in the form): Microsoft, Google, Slack and GitHub
all take it, and GitHub takes nothing else.

Errors name the provider's error code and the redacted token URL, never the form sent or the
answer received: both carry secrets (the code, the verifier, the refresh token, the client
secret, the new tokens).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import urllib.parse
from collections.abc import Mapping
from typing import Any

import attrs

from flow8.outbound import OutboundClient, OutboundError, OutboundPolicy, redact_url

from ._oauth_providers import Endpoints
from .exceptions import OAuthProviderError, OAuthReauthNeeded

# What a token endpoint answers when the grant or the client itself is no longer good: a
# retry will not help, a person must connect the credential again. (GitHub has its own
# words for an expired or revoked refresh token.)
REAUTH_ERRORS = frozenset(
    {
        "invalid_grant",
        "invalid_client",
        "unauthorized_client",
        "bad_refresh_token",
        "bad_verification_code",
        "invalid_refresh_token",
        "token_revoked",
        "token_expired",
    }
)
TOKEN_TIMEOUT_SECONDS = 20.0
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def new_state() -> str:
    return secrets.token_urlsafe(32)


def new_verifier() -> str:
    # RFC 7636 4.1: 43 to 128 characters of [A-Za-z0-9-._~]; 64 random bytes make 86.
    return secrets.token_urlsafe(64)


def challenge_of(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(
    endpoints: Endpoints, client_id: str, redirect_uri: str, state: str, verifier: str
) -> str:
    assert endpoints.authorize_url is not None
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": challenge_of(verifier),
        "code_challenge_method": "S256",
        **endpoints.authorize_params,
    }
    if endpoints.scopes:
        params["scope"] = endpoints.scope_separator.join(endpoints.scopes)
    base = endpoints.authorize_url
    separator = "&" if urllib.parse.urlsplit(base).query else "?"
    return base + separator + urllib.parse.urlencode(params)


@attrs.frozen(repr=False)
class Tokens:
    """A token endpoint's successful answer. No repr: it holds the tokens."""

    access_token: str
    refresh_token: str | None
    expires_in: float | None  # seconds, as the provider said; None: it did not say
    scope: str | None


def safe_code(value: Any) -> str:
    """A provider's error code, if it looks like one; anything else is not repeated (an
    answer may echo what it was sent)."""
    text = str(value or "")
    return text if _ERROR_CODE.match(text) else "unrecognized_error"


def _parse(status: int, content_type: str, body: bytes) -> Mapping[str, Any]:
    # GitHub answers a form unless asked for JSON (we ask, but be lenient).
    if "json" in content_type or body.lstrip().startswith(b"{"):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
        return {}
    pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"))
    return dict(pairs) if status < 500 else {}


async def request_token(
    policy: OutboundPolicy, endpoints: Endpoints, data: Mapping[str, Any], form: Mapping[str, str]
) -> Tokens:
    """POST `form` (a grant) to the token endpoint with the client's id and secret.

    Raises `OAuthReauthNeeded` when the provider refuses the grant or the client
    (`REAUTH_ERRORS`), `OAuthProviderError` for everything else that is not a token."""
    url = endpoints.token_url
    where = redact_url(url)
    body = urllib.parse.urlencode(
        {**form, "client_id": data["clientId"], "client_secret": data["clientSecret"]}
    ).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    try:
        async with OutboundClient(policy) as client:
            response = await client.request(
                "POST",
                url,
                headers=headers,
                content=body,
                # A token endpoint that redirects is misconfigured; following it would send
                # the secrets again to wherever it points.
                follow_redirects=False,
                timeout_seconds=TOKEN_TIMEOUT_SECONDS,
            )
    except OutboundError as failed:
        raise OAuthProviderError(f"the token endpoint could not be reached: {failed}") from None
    answer = _parse(
        response.status_code, response.headers.get("content-type", ""), response.content
    )
    # Slack answers 200 {"ok": false, "error": ...}; GitHub answers 200 {"error": ...}.
    error = answer.get("error")
    if error or answer.get("ok") is False or response.status_code >= 400:
        code = safe_code(error or f"http_{response.status_code}")
        message = f"the token endpoint {where} refused the request ({code})"
        if code in REAUTH_ERRORS:
            raise OAuthReauthNeeded(message)
        raise OAuthProviderError(message)
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise OAuthProviderError(f"the token endpoint {where} answered no access_token")
    refresh = answer.get("refresh_token")
    expires_in = answer.get("expires_in")
    try:
        seconds = float(expires_in) if expires_in not in (None, "") else None
    except (TypeError, ValueError):
        seconds = None
    scope = answer.get("scope")
    return Tokens(
        token,
        refresh if isinstance(refresh, str) and refresh else None,
        seconds if seconds is not None and seconds > 0 else None,
        scope if isinstance(scope, str) else None,
    )
