"""Changing one's own password: the current one is required, the new one follows the rules,
every other session ends, and guessing the current one is throttled like a login."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
from identity_support import IP, OWNER_EMAIL, OWNER_PASSWORD, UA, world

from flow8.services.identity import (
    InvalidCredentials,
    InvalidInput,
    NotAuthenticated,
    PermissionDenied,
    RateLimited,
)

NEW = "owner-password-new-1"


async def test_the_other_sessions_end_and_this_one_stays(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        phone = await w.login(OWNER_EMAIL, OWNER_PASSWORD)
        laptop = await w.login(OWNER_EMAIL, OWNER_PASSWORD)
        other_user = await w.company("B")  # someone else's session is none of this
        session_of = w.identity.session_principal
        ended = await w.identity.change_password(w.owner, OWNER_PASSWORD, NEW, ip=IP, user_agent=UA)
        assert ended == 2  # phone and laptop; w.owner's own session stays
        sessions = w.store.system.collection("sessions")
        mine = await sessions.find({"user_id": w.owner.user.id})
        assert [s["_id"] for s in mine] == [w.owner.session_id]
        for gone in (phone, laptop):
            with pytest.raises(NotAuthenticated):
                await session_of(gone.token)
        assert await sessions.count({"user_id": other_user.user.id}) == 1
        with pytest.raises(InvalidCredentials):
            await w.login(OWNER_EMAIL, OWNER_PASSWORD)
        assert (await w.login(OWNER_EMAIL, NEW)).principal.user.id == w.owner.user.id
        (entry,) = w.entries("auth_password_changed")
        assert (entry.user_id, entry.company_id) == (w.owner.user.id, w.company_a)
        assert entry.details == {"otherSessionsEnded": 2}
        assert OWNER_PASSWORD not in repr(w.audit)
        assert NEW not in repr(w.audit)


async def test_refusals_name_the_field_and_change_nothing(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        change = w.identity.change_password
        cases = [
            ("not-the-password", NEW, "currentPassword"),
            (OWNER_PASSWORD, "short", "newPassword"),
            (OWNER_PASSWORD, OWNER_PASSWORD, "newPassword"),  # must differ
        ]
        for current, new, field in cases:
            with pytest.raises(InvalidInput) as refused:
                await change(w.owner, current, new, ip=IP, user_agent=UA)
            assert refused.value.field == field
        key = attrs.evolve(w.owner, via="api_key", session_id=None)
        with pytest.raises(PermissionDenied):  # a leaked key must not become the account
            await change(key, OWNER_PASSWORD, NEW, ip=IP, user_agent=UA)
        assert (await w.login(OWNER_EMAIL, OWNER_PASSWORD)).principal.user.id == w.owner.user.id
        assert w.entries("auth_password_changed") == []
        (failure,) = w.entries("auth_password_change_failure")
        assert failure.user_id == w.owner.user.id


async def test_guessing_the_current_password_is_throttled(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        for i in range(5):
            with pytest.raises(InvalidInput):
                await w.identity.change_password(
                    w.owner, f"guess-{i}-password", NEW, ip=IP, user_agent=UA
                )
        with pytest.raises(RateLimited) as limited:
            await w.identity.change_password(w.owner, OWNER_PASSWORD, NEW, ip=IP, user_agent=UA)
        assert limited.value.retry_after == 1.0
        w.now[0] += 1.0
        await w.identity.change_password(w.owner, OWNER_PASSWORD, NEW, ip=IP, user_agent=UA)
        assert (await w.login(OWNER_EMAIL, NEW, ip="203.0.113.50")).principal.company_id
