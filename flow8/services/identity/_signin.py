"""Checking passwords: signing in and changing one's password, both throttled (see _throttle).

Every place a password is checked (login, accepting an invitation as an existing user, the
password change) goes through `_authenticate_password`, so none of them is a way around the
throttle, and each answers an unknown account exactly like a wrong password.
"""

from __future__ import annotations

import abc
import unicodedata
from collections.abc import Callable
from typing import Any

from flow8.services.audit import AuditEntry
from flow8.store import Collection

from ._models import LoginResult, Principal, User
from ._passwords import Passwords
from ._ratelimit import RateLimiter, address_key
from ._rules import audit_by, check_password, utcnow
from ._throttle import Backoff
from .exceptions import InvalidCredentials, InvalidInput, PermissionDenied, RateLimited


def account_key(email: str) -> str:
    """What a sign-in attempt is counted under: the email as typed, normalized but not
    validated (an invalid or unknown email is throttled like any other)."""
    return unicodedata.normalize("NFKC", email).strip().lower()


class Signin(abc.ABC):
    """The password half of IdentityService (which supplies the members below)."""

    audit: Callable[[AuditEntry], None]
    passwords: Passwords
    signin_backoff: Backoff
    ip_limiter: RateLimiter

    @abc.abstractmethod
    def _c(self, name: str) -> Collection: ...

    @abc.abstractmethod
    def forget_credentials(self) -> None: ...

    @abc.abstractmethod
    async def _default_company(self, user_id: str, preferred: str | None) -> str | None: ...

    @abc.abstractmethod
    async def _open_session(
        self, user: User, company_id: str | None, *, ip: str, user_agent: str
    ) -> LoginResult: ...

    # -- the throttle --------------------------------------------------------------------

    def _begin_attempt(self, account: str, ip: str) -> None:
        """Refuse an attempt its pair or its source may not make yet; otherwise count it as
        a failure before the slow check, so racing attempts cannot all get past the limits
        (a success takes its count back)."""
        source = address_key(ip)
        wait = max(
            self.signin_backoff.blocked_for((account, source)),
            self.ip_limiter.blocked_for(source),
        )
        if wait > 0:
            raise RateLimited("too many sign-in attempts; try again later", wait)
        self.signin_backoff.attempt((account, source))
        self.ip_limiter.hit(source)

    async def _authenticate_password(
        self,
        account: str,
        password: str,
        *,
        ip: str,
        user_agent: str,
        failure: str = "auth_login_failure",
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The user document of `account` when `password` is its password. The same
        `InvalidCredentials`, after about the same time, for an unknown account, an account
        without a password and a wrong password; `RateLimited` while throttled. A failure is
        audited as `failure`."""
        self._begin_attempt(account, ip)
        source = address_key(ip)
        doc = await self._c("users").find_one({"email": account})
        stored = doc.get("password_hash") if doc is not None else None
        if stored is None:
            await self.passwords.burn(password)
            ok = False
        else:
            ok = await self.passwords.verify(stored, password)
        if not ok or doc is None or stored is None:
            self.signin_backoff.failed((account, source))
            # A known account's failures belong in its company's trail, where its admins
            # look; unknown accounts go to the system trail.
            company = await self._default_company(doc["_id"], None) if doc else None
            self.audit(
                AuditEntry(
                    failure,
                    company_id=company,
                    user_id=doc["_id"] if doc else None,
                    user_email=account[:320],
                    ip=ip,
                    user_agent=user_agent,
                    details=details,
                )
            )
            raise InvalidCredentials("invalid email or password")
        self.signin_backoff.reset((account, source))
        self.ip_limiter.undo(source)
        if self.passwords.needs_rehash(stored):
            new_hash = await self.passwords.hash(password)
            await self._c("users").update_one(
                {"_id": doc["_id"]}, {"$set": {"password_hash": new_hash, "updated_at": utcnow()}}
            )
        return doc

    # -- login ---------------------------------------------------------------------------

    async def login(self, email: str, password: str, *, ip: str, user_agent: str) -> LoginResult:
        """Same error, and about the same time, for an unknown email and a wrong password."""
        key = account_key(email)
        doc = await self._authenticate_password(key, password, ip=ip, user_agent=user_agent)
        user = User.from_doc(doc)
        company_id = await self._default_company(user.id, doc.get("last_company_id"))
        result = await self._open_session(user, company_id, ip=ip, user_agent=user_agent)
        self.audit(
            AuditEntry(
                "auth_login_success",
                company_id=company_id,
                user_id=user.id,
                user_email=user.email,
                ip=ip,
                user_agent=user_agent,
            )
        )
        return result

    # -- changing one's password -----------------------------------------------------------

    async def change_password(
        self, principal: Principal, current: str, new: str, *, ip: str, user_agent: str
    ) -> int:
        """Set the caller's password to `new` after checking `current` (throttled like a
        login), and end every other session of theirs; the calling session stays. Returns
        how many sessions were ended."""
        if principal.via != "session" or principal.session_id is None:
            # A leaked API key must not become the account itself.
            raise PermissionDenied("an API key cannot change a password; sign in to do it")
        check_password(new, "newPassword")
        if new == current:
            # (Also what makes a password an admin once chose stop being known to them.)
            raise InvalidInput("newPassword", "must differ from the current password")
        user = principal.user
        try:
            await self._authenticate_password(
                user.email,
                current,
                ip=ip,
                user_agent=user_agent,
                failure="auth_password_change_failure",
            )
        except InvalidCredentials:
            raise InvalidInput("currentPassword", "is not your current password") from None
        new_hash = await self.passwords.hash(new)
        now = utcnow()
        self.forget_credentials()
        await self._c("users").update_one(
            {"_id": user.id},
            {
                "$set": {
                    "password_hash": new_hash,
                    "password_set_by_holder": True,
                    "password_changed_at": now,
                    "updated_at": now,
                }
            },
        )
        ended = await self._c("sessions").delete_many(
            {"user_id": user.id, "_id": {"$ne": principal.session_id}}
        )
        self.forget_credentials()  # again: a lookup may have raced the writes
        self.audit(
            audit_by(
                principal,
                "auth_password_changed",
                company_id=principal.company_id,
                target_type="user",
                target_id=user.id,
                ip=ip,
                user_agent=user_agent,
                details={"otherSessionsEnded": ended},
            )
        )
        return ended
