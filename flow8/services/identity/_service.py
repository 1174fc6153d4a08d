"""Identity use cases: install, users, sessions, logout and API keys. Companies and members
are the `Tenancy` half (_tenancy.py), invitations the `Invitations` half (_invitations.py),
login and password changes the `Signin` half (_signin.py).

Interfaces (HTTP, MCP, CLI) call these; the service talks to the store's system collections
and reports auth events to the audit trail.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import attrs
import trio

from flow8.services.audit import AuditEntry
from flow8.store import Collection, DuplicateKey, Store, new_id

from . import _tokens
from ._install import InstallGate
from ._invitations import Invitations, InvitationSender
from ._key_use import KeyUse
from ._models import (
    SCOPES,
    ApiKey,
    Company,
    CreatedApiKey,
    LoginResult,
    Principal,
    User,
)
from ._passwords import Passwords
from ._ratelimit import RateLimiter
from ._rbac import Role
from ._rules import audit_by, check_name, check_password, company_of, normalize_email, utcnow
from ._signin import Signin
from ._throttle import Backoff, SigninLimits
from .exceptions import (
    Conflict,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
)

Recorder = Callable[[AuditEntry], None]


def _ignore(_: AuditEntry) -> None:
    return None


@attrs.define
class IdentityService(Signin, Invitations):
    store: Store
    passwords: Passwords = attrs.field(factory=Passwords)
    audit: Recorder = _ignore
    session_ttl: timedelta = timedelta(hours=12)
    clock: Callable[[], float] = time.monotonic
    # How password attempts are slowed: per (account, source) pair with growing delays, and
    # a ceiling per source; never a lock on an account (see _throttle.SigninLimits).
    signin_limits: SigninLimits = attrs.field(factory=SigninLimits)
    signin_backoff: Backoff = attrs.field(
        default=attrs.Factory(lambda s: Backoff.of(s.signin_limits, s.clock), takes_self=True)
    )
    ip_limiter: RateLimiter = attrs.field(
        default=attrs.Factory(
            lambda s: RateLimiter(
                s.signin_limits.source_failures,
                s.signin_limits.source_window,
                s.clock,
                s.signin_limits.max_keys,
            ),
            takes_self=True,
        )
    )
    # How long an invitation's token may be accepted.
    invitation_ttl: timedelta = timedelta(days=7)
    # Delivers invitation tokens to the invited address (none yet: the admin hands them on).
    invitation_sender: InvitationSender | None = None
    # Authenticated credentials are cached this long (per process) so a request costs no
    # store reads for its caller; any change made through this service clears the cache, and
    # other instances see revocations within this many seconds.
    auth_cache_seconds: float = 2.0
    install_gate: InstallGate = attrs.field(
        default=attrs.Factory(lambda s: InstallGate(s.store), takes_self=True)
    )
    # Writes each API key's `last_used_at`, at most once a minute and off the request path.
    key_use: KeyUse = attrs.field(
        default=attrs.Factory(lambda s: KeyUse(s.store, s.clock), takes_self=True)
    )
    _principals: dict[str, tuple[float, datetime | None, Principal]] = attrs.field(
        init=False, factory=dict
    )
    _generation: int = attrs.field(init=False, default=0)

    def _c(self, name: str) -> Collection:
        return self.store.system.collection(name)

    # -- install -----------------------------------------------------------------------

    async def installed(self) -> bool:
        return await self._c("users").count({}) > 0

    async def install(self, company: str, email: str, password: str) -> tuple[User, Company]:
        """Create the first company and its owner; refused once any user exists, and to all
        but one of several installs racing (see `InstallGate`)."""
        email = normalize_email(email)
        check_password(password)
        company = check_name("company", company)
        token = await self.install_gate.claim()
        user_id = new_id()
        try:
            # (Hashed once the gate is ours: a refused install costs no hash.)
            password_hash = await self.passwords.hash(password)
            user = await self._create_user(email, password_hash, name="", user_id=user_id)
            created = await self._create_company(company, user.id)
        except BaseException:
            # Nothing half-written: undo what was created and reopen the gate for a retry.
            with trio.CancelScope(shield=True), trio.move_on_after(10):
                await self._c("memberships").delete_many({"user_id": user_id})
                await self._c("companies").delete_many({"created_by": user_id})
                await self._c("users").delete_one({"_id": user_id})
                await self.install_gate.release(token)
            raise
        await self.install_gate.complete(token)
        self.audit(
            AuditEntry(
                "install",
                company_id=created.id,
                user_id=user.id,
                user_email=user.email,
                target_type="company",
                target_id=created.id,
                after={"name": created.name},
            )
        )
        return user, created

    # -- users ---------------------------------------------------------------------------

    async def _create_user(
        self, email: str, password_hash: str, name: str, *, user_id: str | None = None
    ) -> User:
        """A new account with the password its holder chose (at install, or accepting an
        invitation); no one else ever sets a password."""
        now = utcnow()
        doc = {
            "_id": user_id or new_id(),
            "email": email,
            "name": name,
            "password_hash": password_hash,
            # Accounts from before invitations lack this: their password may be one an
            # admin chose (see Invitations._existing_account).
            "password_set_by_holder": True,
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self._c("users").insert_one(doc)
        except DuplicateKey as e:
            raise Conflict("a user with this email exists", "EMAIL_TAKEN") from e
        return User.from_doc(doc)

    async def get_user(self, user_id: str) -> User:
        doc = await self._c("users").find_one({"_id": user_id})
        if doc is None:
            raise NotFound("user not found", "USER_NOT_FOUND")
        return User.from_doc(doc)

    # -- sessions --------------------------------------------------------------------------

    async def _default_company(self, user_id: str, preferred: str | None) -> str | None:
        memberships = self._c("memberships")
        if preferred and await memberships.find_one({"user_id": user_id, "company_id": preferred}):
            return preferred
        first = await memberships.find_one({"user_id": user_id}, sort=[("created_at", 1)])
        return first["company_id"] if first else None

    async def _open_session(
        self, user: User, company_id: str | None, *, ip: str, user_agent: str
    ) -> LoginResult:
        token = _tokens.new_session_token()
        csrf = _tokens.new_csrf_token()
        now = utcnow()
        expires = now + self.session_ttl
        session_id = new_id()
        await self._c("sessions").insert_one(
            {
                "_id": session_id,
                "token_hash": _tokens.digest(token),
                "user_id": user.id,
                "company_id": company_id,
                "csrf_token": csrf,
                "created_at": now,
                "expires_at": expires,
                "ip": ip,
                "user_agent": user_agent[:500],
            }
        )
        role = await self._role(user.id, company_id) if company_id else None
        principal = Principal(
            user, company_id, role, "session", session_id=session_id, csrf_token=csrf
        )
        return LoginResult(token, csrf, expires, principal)

    async def role_in(self, user_id: str, company_id: str) -> Role | None:
        return await self._role(user_id, company_id)

    async def _role(self, user_id: str, company_id: str) -> Role | None:
        doc = await self._c("memberships").find_one({"user_id": user_id, "company_id": company_id})
        return Role(doc["role"]) if doc else None

    def _cached(self, digest: str) -> Principal | None:
        hit = self._principals.get(digest)
        if hit is None:
            return None
        until, expires_at, principal = hit
        if until <= self.clock() or (expires_at is not None and expires_at <= utcnow()):
            self._principals.pop(digest, None)
            return None
        return principal

    def _remember(self, digest: str, principal: Principal, expires_at: datetime | None) -> None:
        if len(self._principals) >= 10_000:
            self._principals.clear()
        self._principals[digest] = (self.clock() + self.auth_cache_seconds, expires_at, principal)

    def forget_credentials(self) -> None:
        """Drop cached sessions and keys (around any change to sessions, keys or roles)."""
        self._generation += 1
        self._principals.clear()

    async def session_principal(self, token: str) -> Principal:
        digest = _tokens.digest(token)
        cached = self._cached(digest)
        # The cache also holds API keys by digest: a key sent as the cookie is no session.
        if cached is not None and cached.via == "session":
            return cached
        generation = self._generation
        principal, expires_at = await self._load_session(digest)
        if generation == self._generation:  # nothing changed while we read
            self._remember(digest, principal, expires_at)
        return principal

    async def _load_session(self, digest: str) -> tuple[Principal, datetime]:
        doc = await self._c("sessions").find_one({"token_hash": digest})
        if doc is None or doc["expires_at"] <= utcnow():
            raise NotAuthenticated("session expired or unknown")
        user_doc = await self._c("users").find_one({"_id": doc["user_id"]})
        if user_doc is None:
            raise NotAuthenticated("session expired or unknown")
        company_id = doc.get("company_id")
        role = await self._role(doc["user_id"], company_id) if company_id else None
        if company_id and role is None:
            # Removed from the company since: the session stays valid, the company does not.
            company_id = None
        principal = Principal(
            User.from_doc(user_doc),
            company_id,
            role,
            "session",
            session_id=doc["_id"],
            csrf_token=doc["csrf_token"],
        )
        return principal, doc["expires_at"]

    async def end_session(self, token: str) -> None:
        """Delete the session behind a cookie value, if any (replaced by a new login)."""
        self.forget_credentials()
        await self._c("sessions").delete_one({"token_hash": _tokens.digest(token)})
        self.forget_credentials()

    async def logout(self, principal: Principal, *, ip: str, user_agent: str) -> None:
        self.forget_credentials()
        if principal.session_id:
            await self._c("sessions").delete_one({"_id": principal.session_id})
        self.forget_credentials()  # again: a lookup may have raced the write
        self.audit(
            audit_by(
                principal,
                "auth_logout",
                company_id=principal.company_id,
                ip=ip,
                user_agent=user_agent,
            )
        )

    async def switch_company(self, principal: Principal, company_id: str) -> Principal:
        self.forget_credentials()
        if principal.via != "session" or principal.session_id is None:
            raise PermissionDenied("an API key is bound to its company")
        role = await self._role(principal.user.id, company_id)
        if role is None:
            raise NotFound("company not found", "COMPANY_NOT_FOUND")
        await self._c("sessions").update_one(
            {"_id": principal.session_id}, {"$set": {"company_id": company_id}}
        )
        await self._c("users").update_one(
            {"_id": principal.user.id}, {"$set": {"last_company_id": company_id}}
        )
        self.forget_credentials()  # again: a lookup may have raced the write
        self.audit(
            audit_by(
                principal,
                "auth_company_switched",
                company_id=company_id,
            )
        )
        return attrs.evolve(principal, company_id=company_id, role=role)

    # -- API keys ------------------------------------------------------------------------

    async def create_api_key(
        self, principal: Principal, name: str, scopes: Iterable[str]
    ) -> CreatedApiKey:
        company_id = company_of(principal)
        name = check_name("name", name)
        wanted = sorted(set(scopes))
        if not wanted or not set(wanted) <= SCOPES:
            raise InvalidInput("scopes", f"must be a non-empty subset of {sorted(SCOPES)}")
        key, prefix = _tokens.new_api_key()
        doc = {
            "_id": new_id(),
            "company_id": company_id,
            "user_id": principal.user.id,
            "name": name,
            "prefix": prefix,
            "key_hash": _tokens.digest(key),
            "scopes": wanted,
            "created_at": utcnow(),
        }
        await self._c("api_keys").insert_one(doc)
        api_key = ApiKey.from_doc(doc)
        self.audit(
            audit_by(
                principal,
                "auth_api_key_created",
                company_id=company_id,
                target_type="api_key",
                target_id=api_key.id,
                after={"name": name, "prefix": prefix, "scopes": wanted},
            )
        )
        return CreatedApiKey(key, api_key)

    async def list_api_keys(self, company_id: str) -> list[ApiKey]:
        docs = await self._c("api_keys").find({"company_id": company_id}, sort=[("_id", 1)])
        return [ApiKey.from_doc(d) for d in docs]

    async def delete_api_key(self, principal: Principal, key_id: str) -> None:
        self.forget_credentials()
        company_id = company_of(principal)
        keys = self._c("api_keys")
        doc = await keys.find_one({"_id": key_id, "company_id": company_id})
        if doc is None:
            raise NotFound("API key not found", "API_KEY_NOT_FOUND")
        await keys.delete_one({"_id": key_id, "company_id": company_id})
        self.forget_credentials()  # again: a lookup may have raced the write
        self.audit(
            audit_by(
                principal,
                "auth_api_key_deleted",
                company_id=company_id,
                target_type="api_key",
                target_id=key_id,
                before={"name": doc["name"], "prefix": doc["prefix"], "scopes": doc["scopes"]},
            )
        )

    async def api_key_principal(self, key: str, scope: str = "api") -> Principal:
        if not _tokens.looks_like_api_key(key):
            raise NotAuthenticated("invalid API key")
        digest = _tokens.digest(key)
        principal = self._cached(digest)
        if principal is None or principal.via != "api_key":
            generation = self._generation
            principal = await self._load_api_key(digest)
            if generation == self._generation:
                self._remember(digest, principal, None)
        # Used once it is known to be valid, even for a scope it lacks: its holder should see
        # that someone presents it.
        if principal.api_key_id is not None:
            self.key_use.note(principal.api_key_id)
        if scope not in principal.scopes:
            raise PermissionDenied(f"API key lacks the {scope!r} scope")
        return principal

    async def _load_api_key(self, digest: str) -> Principal:
        doc = await self._c("api_keys").find_one({"key_hash": digest})
        if doc is None:
            raise NotAuthenticated("invalid API key")
        role = await self._role(doc["user_id"], doc["company_id"])
        user_doc = await self._c("users").find_one({"_id": doc["user_id"]})
        if role is None or user_doc is None:
            # The key's creator left the company: the key dies with the membership.
            raise NotAuthenticated("invalid API key")
        return Principal(
            User.from_doc(user_doc),
            doc["company_id"],
            role,
            "api_key",
            api_key_id=doc["_id"],
            scopes=frozenset(doc["scopes"]),
        )
