"""OAuth2 provider presets: where a provider authorizes and issues tokens, and the scopes a
connection asks for unless the credential names its own.

A credential picks one with its `provider` field; its own `authorizeUrl`, `tokenUrl` and
`scopes` win over the preset's, and a credential without a preset must give the URLs itself
(any other provider, by URL).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .exceptions import InvalidCredential, Problem


@attrs.frozen
class Provider:
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    # Slack's v2 authorize URL wants its scopes separated by commas, as the spec does not.
    scope_separator: str = " "
    # Sent with the authorize URL: what it takes for the provider to hand out a refresh token
    # (Google gives one only for offline access, and again only with a fresh consent).
    authorize_params: Mapping[str, str] = attrs.field(factory=dict)


PROVIDERS: Mapping[str, Provider] = {
    # The "common" tenant: work, school and personal accounts. A single-tenant app gives its
    # own authorizeUrl/tokenUrl (login.microsoftonline.com/<tenant>/...).
    "microsoft": Provider(
        "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        (
            "offline_access",  # without it Microsoft issues no refresh token
            "https://graph.microsoft.com/Mail.Send",
            "https://graph.microsoft.com/Mail.ReadWrite",
            "https://graph.microsoft.com/Calendars.ReadWrite",
        ),
    ),
    "google": Provider(
        "https://accounts.google.com/o/oauth2/v2/auth",
        "https://oauth2.googleapis.com/token",
        (
            "https://www.googleapis.com/auth/gmail.send",
            "https://www.googleapis.com/auth/drive",
            "https://www.googleapis.com/auth/spreadsheets",
        ),
        authorize_params={"access_type": "offline", "prompt": "consent"},
    ),
    "slack": Provider(
        "https://slack.com/oauth/v2/authorize",
        "https://slack.com/api/oauth.v2.access",
        ("chat:write", "files:write"),
        scope_separator=",",
    ),
    "github": Provider(
        "https://github.com/login/oauth/authorize",
        "https://github.com/login/oauth/access_token",
        ("repo", "read:user"),
    ),
}


@attrs.frozen
class Endpoints:
    """What one credential connects to: its preset with its own fields applied."""

    authorize_url: str | None
    token_url: str
    scopes: tuple[str, ...]
    scope_separator: str = " "
    authorize_params: Mapping[str, str] = attrs.field(factory=dict)


def endpoints_of(data: Mapping[str, Any], *, authorize: bool = False) -> Endpoints:
    """The endpoints of an oauth2 credential's `data`; `InvalidCredential` naming the missing
    field when it has neither a preset nor the URL (the authorize URL only when `authorize`)."""
    preset = PROVIDERS.get(str(data.get("provider") or ""))
    token_url = data.get("tokenUrl") or (preset.token_url if preset else None)
    authorize_url = data.get("authorizeUrl") or (preset.authorize_url if preset else None)
    problems = []
    if not token_url:
        problems.append(Problem("data.tokenUrl", "required without a provider preset"))
    if authorize and not authorize_url:
        problems.append(Problem("data.authorizeUrl", "required without a provider preset"))
    if problems:
        raise InvalidCredential(problems)
    scopes = data.get("scopes")
    return Endpoints(
        authorize_url,
        str(token_url),
        tuple(scopes) if scopes else (preset.scopes if preset else ()),
        preset.scope_separator if preset else " ",
        preset.authorize_params if preset else {},
    )
