"""Shared test helpers for the HTTP tests (imported by conftest and the test modules)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx

from flow8.http import Flow8App
from flow8.services.audit import AuditLog
from flow8.services.identity import IdentityService
from flow8.store import Store

OWNER_EMAIL = "owner@example.com"
OWNER_PASSWORD = "owner-password-1"


@attrs.define
class ApiEnv:
    url: str
    store: Store
    identity: IdentityService
    audit: AuditLog
    app: Flow8App

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30, **kwargs)

    @contextlib.asynccontextmanager
    async def session(self, email: str, password: str) -> AsyncIterator[httpx.AsyncClient]:
        """A client holding a session cookie and sending the CSRF token on every request."""
        async with self.client() as client:
            r = await client.post("/api/auth/login", json={"email": email, "password": password})
            assert r.status_code == 200, r.text
            client.headers["X-CSRF-Token"] = r.json()["csrfToken"]
            yield client
