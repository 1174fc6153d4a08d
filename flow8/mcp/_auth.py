"""Who calls the MCP server: an API key with the ``mcp`` scope, or a JWT signed with
``MCP_JWT_SECRET``; and whether the request may come from where it says (Origin, Host).

A JWT is checked as the MCP spec and RFC 8725 ask: the signature first, with HS256 only (the
algorithm is never taken from the token's header, so ``alg: none`` and others are refused),
then ``exp`` (required), ``nbf``, ``iss`` = ``MCP_JWT_ISSUER`` and ``aud`` = the MCP endpoint's
own URL (a token meant for another audience is refused). Its claims name the user (``sub``) and
the company (``company_id``); the role is the membership's, read now: a member removed since the
token was signed is refused. The token itself goes nowhere: not to logs, the audit trail, the
plays, nor any downstream request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import attrs
import jwt

from flow8.services.identity import (
    IdentityError,
    IdentityService,
    NotAuthenticated,
    PermissionDenied,
    Principal,
)

MCP_SCOPE = "mcp"
JWT_ALGORITHMS = ("HS256",)  # the allow-list: never read from the token
API_KEY_PREFIX = "f8k_"
# Clock skew tolerated on exp/nbf.
JWT_LEEWAY_SECONDS = 30


class AuthFailed(Exception):
    """``status`` 401 (no or bad credential) or 403 (a credential that may not do this)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


@attrs.frozen
class Authenticator:
    identity: IdentityService
    jwt_secret: str | None = attrs.field(default=None, repr=False)
    jwt_issuer: str = "flow8"
    audience: str = ""

    async def principal(self, authorization: str | None) -> Principal:
        """The principal behind an ``Authorization: Bearer`` header, or AuthFailed."""
        token = _bearer(authorization)
        if token is None:
            raise AuthFailed(401, "invalid_request", "a bearer token is required")
        if token.startswith(API_KEY_PREFIX):
            try:
                return await self.identity.api_key_principal(token, scope=MCP_SCOPE)
            except PermissionDenied as e:
                raise AuthFailed(
                    403, "insufficient_scope", "the API key lacks the mcp scope"
                ) from e
            except NotAuthenticated as e:
                raise AuthFailed(401, "invalid_token", "invalid API key") from e
        if self.jwt_secret is None:
            raise AuthFailed(401, "invalid_token", "invalid token")
        return await self._jwt_principal(token, self.jwt_secret)

    async def _jwt_principal(self, token: str, secret: str) -> Principal:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                secret,
                algorithms=list(JWT_ALGORITHMS),
                audience=self.audience,
                issuer=self.jwt_issuer,
                leeway=JWT_LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"], "verify_signature": True},
            )
        except jwt.PyJWTError as e:
            # The reason (expired, audience, signature) stays here: no oracle for the caller.
            raise AuthFailed(401, "invalid_token", "invalid token") from e
        user_id, company_id = claims.get("sub"), claims.get("company_id")
        if not isinstance(user_id, str) or not isinstance(company_id, str) or not company_id:
            raise AuthFailed(401, "invalid_token", "invalid token")
        try:
            user = await self.identity.get_user(user_id)
            role = await self.identity.role_in(user_id, company_id)
        except IdentityError as e:
            raise AuthFailed(401, "invalid_token", "invalid token") from e
        if role is None:  # not (or no longer) a member of that company
            raise AuthFailed(401, "invalid_token", "invalid token")
        # A token caller: no session, no key id (see `via_of`).
        return Principal(user, company_id, role, "api_key", scopes=frozenset({MCP_SCOPE}))


def via_of(principal: Principal) -> str:
    """``api_key`` or ``jwt``: a principal from a JWT is the only one without a key id."""
    return "api_key" if principal.api_key_id is not None else "jwt"


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or " " in value:
        return None
    return value


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` (lower-cased; default ports left out)."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def origin_allowed(origin: str | None, allowed: frozenset[str]) -> bool:
    """An absent Origin (a non-browser agent) passes; a present one must be listed."""
    if origin is None:
        return True
    try:
        return origin_of(origin) in allowed
    except ValueError:
        return False
