"""Invitations: only the holder of a token joins, an account exists only once its holder chose
its password, and no company's invitation opens an account for another company."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
import trio
from identity_support import IP, OWNER_EMAIL, UA, world

from flow8.services.identity import (
    Conflict,
    InvalidCredentials,
    InvalidInput,
    Invitation,
    NotFound,
    PermissionDenied,
    RateLimited,
    Role,
)

PERSON = "x@y.example"
PERSON_PASSWORD = "the-persons-own-password"


async def test_an_account_exists_only_once_its_holder_chose_its_password(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        invitation, token = await w.invite(w.owner, "X@Y.example", Role.EDITOR)
        assert token.startswith("f8i_")
        assert invitation.email == PERSON
        stored = await w.doc("invitations", {"email": PERSON})
        assert stored is not None
        assert stored["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
        assert token not in str(stored)
        # Nobody can sign in as the invited email before its holder accepts.
        assert await w.doc("users", {"email": PERSON}) is None
        with pytest.raises(InvalidCredentials):
            await w.login(PERSON, PERSON_PASSWORD)
        joined = await w.accept(token, PERSON_PASSWORD)
        assert joined.principal.company_id == w.company_a
        assert joined.principal.role is Role.EDITOR
        assert joined.principal.via == "session"
        assert (await w.login(PERSON, PERSON_PASSWORD)).principal.company_id == w.company_a
        with pytest.raises(NotFound):  # one use
            await w.accept(token, PERSON_PASSWORD)
        assert await w.identity.list_invitations(w.company_a) == []


async def test_an_invitation_from_one_company_never_opens_another(tmp_path: Path) -> None:
    """The original attack: A plants the email, drops it, B invites it; A must not get in."""
    async with world(tmp_path) as w:
        b = await w.company("B")
        first, first_token = await w.invite(w.owner, PERSON, Role.VIEWER)
        await w.identity.revoke_invitation(w.owner, first.id)
        _, again_token = await w.invite(w.owner, PERSON, Role.VIEWER)  # A's stays pending
        _, b_token = await w.invite(b, PERSON, Role.EDITOR)
        joined = await w.accept(b_token, PERSON_PASSWORD)
        assert (joined.principal.company_id, joined.principal.role) == (b.company_id, Role.EDITOR)
        # A holds two tokens and picks any password: neither opens the person's account.
        with pytest.raises(NotFound):
            await w.accept(first_token, "a-chosen-password-1")
        with pytest.raises(InvalidCredentials):
            await w.accept(again_token, "a-chosen-password-1")
        with pytest.raises(InvalidCredentials):
            await w.login(PERSON, "a-chosen-password-1")
        # The person is in B only, with their own password; A's invitation is still theirs
        # to accept (with that password) or to ignore.
        person = joined.principal.user.id
        assert [c.id for c, _ in await w.identity.my_companies(person)] == [b.company_id]
        assert [i.email for i in await w.identity.list_invitations(w.company_a)] == [PERSON]
        later = await w.accept(again_token, PERSON_PASSWORD)
        assert later.principal.company_id == w.company_a
        roles = {c.id: r for c, r in await w.identity.my_companies(person)}
        assert roles == {b.company_id: Role.EDITOR, w.company_a: Role.VIEWER}


async def test_a_wrong_password_for_an_existing_account_changes_nothing(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        b = await w.company("B")
        assert b.company_id is not None
        invitation, token = await w.invite(b, OWNER_EMAIL, Role.VIEWER)
        for _ in range(5):
            with pytest.raises(InvalidCredentials):
                await w.accept(token, "not-the-owner-password", ip="203.0.113.9")
        # Guessing through an invitation is throttled like a login (same pair, same delays).
        with pytest.raises(RateLimited):
            await w.accept(token, "not-the-owner-password", ip="203.0.113.9")
        with pytest.raises(RateLimited):
            await w.login(OWNER_EMAIL, "owner-password-1", ip="203.0.113.9")
        failures = w.entries("auth_login_failure")
        assert len(failures) == 5
        assert failures[0].details == {"via": "invitation", "invitationId": invitation.id}
        assert failures[0].company_id == w.company_a  # the account's company trail
        # Nothing was joined; the invitation is still pending and works with the password.
        owner_id = w.owner.user.id
        assert b.company_id not in [c.id for c, _ in await w.identity.my_companies(owner_id)]
        assert await w.identity.list_invitations(b.company_id) == [invitation]
        joined = await w.accept(token, "owner-password-1")
        assert joined.principal.company_id == b.company_id


async def test_a_new_accounts_password_follows_the_rules(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        _, token = await w.invite(w.owner, PERSON, Role.VIEWER)
        with pytest.raises(InvalidInput) as refused:
            await w.accept(token, "short")
        assert refused.value.field == "password"
        assert await w.doc("users", {"email": PERSON}) is None
        assert await w.doc("invitations", {"email": PERSON}) is not None


async def test_inviting_again_replaces_the_token_and_the_role(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        _, first = await w.invite(w.owner, PERSON, Role.VIEWER)
        _, second = await w.invite(w.owner, PERSON, Role.OPERATOR)
        assert first != second
        pending = await w.identity.list_invitations(w.company_a)
        assert [(i.email, i.role) for i in pending] == [(PERSON, Role.OPERATOR)]
        with pytest.raises(NotFound):
            await w.accept(first, PERSON_PASSWORD)
        joined = await w.accept(second, PERSON_PASSWORD)
        assert joined.principal.role is Role.OPERATOR


async def test_an_expired_invitation_is_refused_and_not_listed(tmp_path: Path) -> None:
    async with world(tmp_path, invitation_ttl=timedelta(0)) as w:
        invitation, token = await w.invite(w.owner, PERSON, Role.VIEWER)
        assert invitation.expires_at == invitation.created_at
        assert await w.identity.list_invitations(w.company_a) == []
        with pytest.raises(NotFound):
            await w.accept(token, PERSON_PASSWORD)
        assert await w.doc("users", {"email": PERSON}) is None


async def test_the_lifetime_defaults_to_seven_days(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        invitation, _ = await w.invite(w.owner, PERSON, Role.VIEWER)
        assert invitation.expires_at - invitation.created_at == timedelta(days=7)


async def test_roles_members_and_other_companies(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        _, admin_token = await w.invite(w.owner, "ad@a.example", Role.ADMIN)
        admin = (await w.accept(admin_token, "admin-password-1")).principal
        with pytest.raises(PermissionDenied):
            await w.identity.invite(admin, PERSON, Role.OWNER)
        for_owner, _ = await w.invite(w.owner, "o2@a.example", Role.OWNER)
        with pytest.raises(PermissionDenied):  # an admin cannot undo what only owners can do
            await w.identity.revoke_invitation(admin, for_owner.id)
        with pytest.raises(Conflict) as member:
            await w.identity.invite(admin, "AD@a.example", Role.VIEWER)
        assert member.value.code == "MEMBER_EXISTS"
        b = await w.company("B")
        with pytest.raises(NotFound):  # another company's invitation does not exist for B
            await w.identity.revoke_invitation(b, for_owner.id)
        assert await w.identity.list_invitations(b.company_id or "") == []
        mine, _ = await w.invite(admin, PERSON, Role.VIEWER)
        await w.identity.revoke_invitation(admin, mine.id)
        assert await w.identity.list_invitations(w.company_a) == [for_owner]


async def test_every_step_is_audited_without_the_token(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        invitation, token = await w.invite(w.owner, PERSON, Role.EDITOR)
        revoked, revoked_token = await w.invite(w.owner, "r@y.example", Role.VIEWER)
        await w.identity.revoke_invitation(w.owner, revoked.id)
        await w.accept(token, PERSON_PASSWORD)
        made = w.entries("invitation_created")
        assert [(e.after["email"], e.after["role"]) for e in made] == [
            (PERSON, "editor"),
            ("r@y.example", "viewer"),
        ]
        assert made[0].user_id == w.owner.user.id
        assert made[0].company_id == w.company_a
        (gone,) = w.entries("invitation_revoked")
        assert gone.target_id == revoked.id
        assert gone.before == {"email": "r@y.example", "role": "viewer"}
        (accepted,) = w.entries("invitation_accepted")
        assert accepted.target_id == invitation.id
        assert accepted.company_id == w.company_a
        assert accepted.user_email == PERSON
        assert (accepted.ip, accepted.user_agent) == (IP, UA)
        everything = repr(w.audit)
        for secret in (token, revoked_token):
            assert secret.removeprefix("f8i_") not in everything
        assert PERSON_PASSWORD not in everything


async def test_one_token_is_used_once_even_racing_itself(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        _, token = await w.invite(w.owner, PERSON, Role.VIEWER)
        outcomes: list[str] = []

        async def accept(password: str) -> None:
            try:
                await w.accept(token, password)
            except (NotFound, Conflict, InvalidCredentials) as e:
                outcomes.append(type(e).__name__)
            else:
                outcomes.append("joined")

        async with trio.open_nursery() as nursery:
            for i in range(4):
                nursery.start_soon(accept, f"racer-password-{i}")
        assert outcomes.count("joined") == 1
        assert await w.store.system.collection("users").count({"email": PERSON}) == 1
        person = await w.doc("users", {"email": PERSON})
        assert person is not None
        members = await w.store.system.collection("memberships").count({"user_id": person["_id"]})
        assert members == 1


async def test_two_companies_racing_to_create_one_account(tmp_path: Path) -> None:
    """Both invitations of a new email accepted at once: one creates the account; the other
    stays pending, now to be accepted with that account's password."""
    async with world(tmp_path) as w:
        b = await w.company("B")
        tokens = {
            "a": (await w.invite(w.owner, PERSON, Role.VIEWER))[1],
            "b": (await w.invite(b, PERSON, Role.VIEWER))[1],
        }
        results: dict[str, object] = {}

        async def accept(name: str) -> None:
            try:
                results[name] = await w.accept(tokens[name], f"{name}-password-chosen")
            except (Conflict, InvalidCredentials) as e:
                results[name] = e

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept, "a")
            nursery.start_soon(accept, "b")
        (loser,) = [n for n, r in results.items() if isinstance(r, Exception)]
        refusal = results[loser]
        # Racing: the account appeared between the check and the insert; one after the
        # other: the second found the account, and its password did not match.
        assert isinstance(refusal, InvalidCredentials) or (
            isinstance(refusal, Conflict) and refusal.code == "EMAIL_TAKEN"
        )
        assert await w.store.system.collection("users").count({"email": PERSON}) == 1
        winner = "b" if loser == "a" else "a"
        joined = await w.accept(tokens[loser], f"{winner}-password-chosen")
        assert joined.principal.company_id == (w.company_a if loser == "a" else b.company_id)


async def test_an_account_from_before_invitations_changes_its_password_first(
    tmp_path: Path,
) -> None:
    """An admin chose the passwords of accounts made before invitations: such a password
    cannot accept an invitation until its holder changed it (which only they can)."""
    async with world(tmp_path) as w:
        b = await w.company("B")
        await w.store.system.collection("users").update_one(
            {"email": OWNER_EMAIL}, {"$unset": {"password_set_by_holder": ""}}
        )
        _, token = await w.invite(b, OWNER_EMAIL, Role.VIEWER)
        with pytest.raises(Conflict) as refused:
            await w.accept(token, "owner-password-1")
        assert refused.value.code == "PASSWORD_CHANGE_REQUIRED"
        assert len(await w.identity.list_invitations(b.company_id or "")) == 1
        await w.identity.change_password(
            w.owner, "owner-password-1", "owner-password-2", ip=IP, user_agent=UA
        )
        joined = await w.accept(token, "owner-password-2")
        assert joined.principal.company_id == b.company_id


class FakeSender:
    """The seam an email component will fill: what it was asked to deliver."""

    def __init__(self) -> None:
        self.sent: list[tuple[Invitation, str]] = []
        self.down = False

    async def send(self, invitation: Invitation, token: str) -> None:
        if self.down:
            raise ConnectionRefusedError("mail server down")
        self.sent.append((invitation, token))


async def test_a_sender_gets_the_token_and_the_admin_does_not(tmp_path: Path) -> None:
    sender = FakeSender()
    async with world(tmp_path, invitation_sender=sender) as w:
        created = await w.identity.invite(w.owner, PERSON, Role.VIEWER)
        assert created.token is None
        ((invitation, token),) = sender.sent
        assert invitation == created.invitation
        assert (await w.accept(token, PERSON_PASSWORD)).principal.company_id == w.company_a
        sender.down = True
        with pytest.raises(ConnectionRefusedError):
            await w.identity.invite(w.owner, "z@y.example", Role.VIEWER)
        # Not delivered, so not left behind: no invitation nobody could accept.
        assert await w.identity.list_invitations(w.company_a) == []
        assert w.entries("invitation_created")[-1].after["email"] == PERSON
