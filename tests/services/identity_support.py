"""An IdentityService over a real sqlite store in tmp_path, with an installed first company,
its owner signed in, and the audit entries it records kept in a list."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs

from flow8.services.audit import AuditEntry
from flow8.services.identity import (
    Argon2Params,
    IdentityService,
    Invitation,
    LoginResult,
    Passwords,
    Principal,
    Role,
)
from flow8.store import Keyring, Store, open_store

OWNER_EMAIL = "owner@a.example"
OWNER_PASSWORD = "owner-password-1"
IP = "198.51.100.1"
UA = "tests"


@attrs.define
class World:
    identity: IdentityService
    store: Store
    audit: list[AuditEntry]
    owner: Principal  # the owner of company A, signed in
    company_a: str
    now: list[float]  # the service's clock: advance now[0] to let time pass

    def entries(self, action: str) -> list[AuditEntry]:
        return [e for e in self.audit if e.action == action]

    async def login(self, email: str, password: str, ip: str = IP) -> LoginResult:
        return await self.identity.login(email, password, ip=ip, user_agent=UA)

    async def company(self, name: str) -> Principal:
        """A new company owned by a new owner (invited to A, joined, left A, created it)."""
        email = f"owner@{name.lower()}.example"
        _, token = await self.invite(self.owner, email, Role.VIEWER)
        joined = await self.accept(token, f"{name}-owner-password")
        await self.identity.remove_member(joined.principal, joined.principal.user.id)
        company = await self.identity.create_company(joined.principal, name)
        return await self.identity.switch_company(joined.principal, company.id)

    async def invite(self, by: Principal, email: str, role: Role) -> tuple[Invitation, str]:
        """An invitation and the token its answer showed."""
        created = await self.identity.invite(by, email, role)
        assert created.token is not None
        return created.invitation, created.token

    async def accept(self, token: str, password: str, ip: str = IP) -> LoginResult:
        return await self.identity.accept_invitation(token, password, ip=ip, user_agent=UA)

    async def doc(self, collection: str, filter: dict[str, Any]) -> dict[str, Any] | None:
        return await self.store.system.collection(collection).find_one(filter)


FAST = Argon2Params(memory_kib=8 * 1024, iterations=1)


@contextlib.asynccontextmanager
async def world(tmp_path: Path, **service: Any) -> AsyncIterator[World]:
    """`service` overrides IdentityService's constructor parameters."""
    audit: list[AuditEntry] = []
    now = [1000.0]
    async with open_store(
        f"sqlite:///{tmp_path / 'flow8.db'}",
        data_dir=tmp_path,
        durability="normal",
        encryption=Keyring.generate(),
    ) as store:
        identity = IdentityService(
            store,
            passwords=Passwords(FAST),
            audit=audit.append,
            clock=lambda: now[0],
            **service,
        )
        _, company = await identity.install("A", OWNER_EMAIL, OWNER_PASSWORD)
        owner = (await identity.login(OWNER_EMAIL, OWNER_PASSWORD, ip=IP, user_agent=UA)).principal
        yield World(identity, store, audit, owner, company.id, now)
