"""The ``oauth-refresh`` job: refreshes the OAuth2 tokens due in every company, so that a
credential no step uses is kept alive too (a provider may expire an idle refresh token).

Each refresh takes the credential's lease like a step's does, so the job on every instance,
and the steps, refresh a token once between them (``flow8.services.credentials``).
"""

from __future__ import annotations

from flow8.services.credentials import CredentialService

from ._periodic import PeriodicJob

OAUTH_REFRESH_SECONDS = 60.0


def oauth_refresh_job(
    credentials: CredentialService, *, interval: float = OAUTH_REFRESH_SECONDS
) -> PeriodicJob:
    return PeriodicJob("oauth-refresh", credentials.oauth.refresh_due, interval, interval)
