"""An OAuth2 authorization server on loopback: authlib's `AuthorizationServer` (RFC 6749
authorization code with PKCE required, refresh tokens rotated on use, client credentials),
served by `LocalServer` on 127.0.0.1 over plain HTTP.

It approves every authorization for one user at once (no login page): the test plays the
browser, follows the authorize URL to the redirect and hands the callback its query.
`token_requests` lists the grant types the token endpoint received; `hold_refresh` delays a
refresh answer (so racing refreshers overlap); `revoke_refresh_tokens()` makes the next
refresh an `invalid_grant`.
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.parse
from collections import defaultdict
from typing import Any

import attrs
import trio
from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
    TokenMixin,
    grants,
)
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge

from support.local_http import LocalServer, Seen, reply

# authlib refuses http:// URIs otherwise; this server lives on loopback for tests only.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

USER = "ada"


@attrs.define
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str
    scope: str = "read write"

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        allowed = set(self.scope.split())
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri.startswith("http://")

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_post"  # what flow8 sends

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token", "client_credentials")


@attrs.define
class Code(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@attrs.define
class Token(TokenMixin):  # type: ignore[misc]
    client_id: str
    access_token: str
    refresh_token: str | None
    scope: str
    expires_in: int
    revoked: bool = False

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return False

    def is_revoked(self) -> bool:
        return self.revoked


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, data: dict[str, str]) -> None:
        self._data = data

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return defaultdict(list, {k: [v] for k, v in self._data.items()})


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, seen: Seen, base: str) -> None:
        super().__init__(seen.method, base + seen.target, headers=seen.headers)
        query = urllib.parse.urlsplit(seen.target).query
        self._args = dict(urllib.parse.parse_qsl(query))
        self._form = dict(urllib.parse.parse_qsl(seen.body.decode()))
        self.payload = _Payload({**self._args, **self._form})

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_post"]

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        self.server.owner.codes[code] = Code(
            code,
            request.client.client_id,
            data["redirect_uri"],
            request.payload.scope or "",
            data.get("code_challenge"),
            data.get("code_challenge_method"),
        )

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        found: Code | None = self.server.owner.codes.get(code)
        return found if found is not None and found.client_id == client.client_id else None

    def delete_authorization_code(self, authorization_code: Code) -> None:
        self.server.owner.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: Code) -> str:
        return USER


class _RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_post"]
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotated on every use, as Microsoft and Slack do

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        for token in self.server.owner.tokens:
            if token.refresh_token == refresh_token and not token.revoked:
                return token
        return None

    def authenticate_user(self, refresh_token: Token) -> str:
        return USER

    def revoke_old_credential(self, refresh_token: Token) -> None:
        refresh_token.revoked = True


class _ClientGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_post"]


class _Server(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, owner: OAuthServer) -> None:
        super().__init__(scopes_supported=["read", "write"])
        self.owner = owner

        def access(*_: Any, **__: Any) -> str:
            return "at-" + secrets.token_urlsafe(24)

        def refresh(*_: Any, **__: Any) -> str:
            return "rt-" + secrets.token_urlsafe(24)

        def expires(client: Any, grant_type: str) -> int:
            return owner.expires_in

        self.register_token_generator("default", BearerTokenGenerator(access, refresh, expires))
        self.register_grant(_CodeGrant, [CodeChallenge(required=True)])
        self.register_grant(_RefreshGrant)
        self.register_grant(_ClientGrant)

    def query_client(self, client_id: str) -> Client | None:
        return self.owner.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        self.owner.tokens.append(
            Token(
                request.client.client_id,
                token["access_token"],
                token.get("refresh_token"),
                token.get("scope", ""),
                int(token.get("expires_in", 0)),
            )
        )

    def create_oauth2_request(self, request: Any) -> Any:
        return request

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        content = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
        return status, content, list(headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass


class OAuthServer:
    """`await nursery.start(server.serve)`; then `server.url("/token")` etc."""

    def __init__(self, client_id: str, client_secret: str, *, expires_in: int = 3600) -> None:
        self.clients = {client_id: Client(client_id, client_secret)}
        self.codes: dict[str, Code] = {}
        self.tokens: list[Token] = []
        self.expires_in = expires_in
        self.token_requests: list[str] = []  # grant_type of each token request, in order
        self.token_bodies: list[bytes] = []
        self.hold_refresh = 0.0
        self.local = LocalServer(self._handle, name="oauth")
        self._server = _Server(self)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.local.port}"

    def url(self, path: str) -> str:
        return self.base + path

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.local.serve(task_status=task_status)

    def revoke_refresh_tokens(self) -> None:
        for token in self.tokens:
            token.revoked = True

    def issued_refresh_tokens(self) -> list[str]:
        return [t.refresh_token for t in self.tokens if t.refresh_token]

    async def _handle(self, seen: Seen, stream: trio.abc.Stream, _: LocalServer) -> None:
        request = _Request(seen, self.base)
        path = urllib.parse.urlsplit(seen.target).path
        if path == "/authorize" and seen.method == "GET":
            try:
                grant = self._server.get_consent_grant(request, end_user=USER)
            except OAuth2Error as error:
                status, body, headers = self._server.handle_error_response(request, error)
            else:
                status, body, headers = self._server.create_authorization_response(
                    request, grant_user=USER, grant=grant
                )
        elif path == "/token" and seen.method == "POST":
            grant = request.form.get("grant_type", "")
            self.token_requests.append(grant)
            self.token_bodies.append(seen.body)
            if grant == "refresh_token" and self.hold_refresh:
                await trio.sleep(self.hold_refresh)
            status, body, headers = self._server.create_token_response(request)
        else:
            status, body, headers = 404, b"", []
        await reply(stream, status, body, headers)
