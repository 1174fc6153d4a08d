"""Companies and their members: creating, renaming, changing roles, removing (people join
through invitations, in _invitations.py)."""

from __future__ import annotations

import abc
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flow8.services.audit import AuditEntry
from flow8.store import Collection, DuplicateKey, ReturnDocument, new_id

from ._models import Company, Member, Principal, User
from ._rbac import RANK, Role
from ._rules import audit_by, check_name, company_of, slugify, utcnow
from .exceptions import Conflict, NotFound, PermissionDenied


class Tenancy(abc.ABC):
    """The company and member half of IdentityService (which supplies the members below)."""

    audit: Callable[[AuditEntry], None]

    @abc.abstractmethod
    def _c(self, name: str) -> Collection: ...

    @abc.abstractmethod
    async def get_user(self, user_id: str) -> User: ...

    @abc.abstractmethod
    def forget_credentials(self) -> None: ...

    # -- companies -----------------------------------------------------------------------

    async def _create_company(self, name: str, owner_id: str) -> Company:
        now = utcnow()
        base = slugify(name)
        companies = self._c("companies")
        for attempt in range(20):
            slug = base if attempt == 0 else f"{base}-{new_id()[-6:].lower()}"
            doc = {
                "_id": new_id(),
                "name": name,
                "slug": slug,
                "created_by": owner_id,
                "created_at": now,
                "updated_at": now,
            }
            try:
                await companies.insert_one(doc)
            except DuplicateKey:
                continue
            await self._c("memberships").insert_one(
                {
                    "_id": new_id(),
                    "company_id": doc["_id"],
                    "user_id": owner_id,
                    "role": Role.OWNER.value,
                    "created_at": now,
                }
            )
            return Company.from_doc(doc)
        raise Conflict("could not find a free slug for this company name", "SLUG_TAKEN")

    async def create_company(self, principal: Principal, name: str) -> Company:
        company = await self._create_company(check_name("name", name), principal.user.id)
        self.audit(
            audit_by(
                principal,
                "company_created",
                company_id=company.id,
                target_type="company",
                target_id=company.id,
                after={"name": company.name, "slug": company.slug},
            )
        )
        return company

    async def my_companies(self, user_id: str) -> list[tuple[Company, Role]]:
        memberships = await self._c("memberships").find({"user_id": user_id}, sort=[("_id", 1)])
        out = []
        for m in memberships:
            doc = await self._c("companies").find_one({"_id": m["company_id"]})
            if doc is not None:
                out.append((Company.from_doc(doc), Role(m["role"])))
        return out

    async def get_company(self, company_id: str) -> Company:
        doc = await self._c("companies").find_one({"_id": company_id})
        if doc is None:
            raise NotFound("company not found", "COMPANY_NOT_FOUND")
        return Company.from_doc(doc)

    async def resolve_company(self, ref: str | None) -> Company:
        """The company named on the command line of the machine holding the data: by id or
        by slug, or, with no name, the only company there is. (The REST API never resolves
        companies this way: there the company comes from the session or the API key.)"""
        companies = self._c("companies")
        if ref is None:
            docs = await companies.find({}, limit=2)
            if len(docs) == 1:
                return Company.from_doc(docs[0])
            if not docs:
                raise NotFound("there is no company yet: run flow8 init", "COMPANY_NOT_FOUND")
            raise NotFound(
                "this instance has several companies: name one with --company (id or slug)",
                "COMPANY_NOT_FOUND",
            )
        doc = await companies.find_one({"_id": ref}) or await companies.find_one({"slug": ref})
        if doc is None:
            raise NotFound(f"company {ref!r} not found (by id or slug)", "COMPANY_NOT_FOUND")
        return Company.from_doc(doc)

    async def rename_company(self, principal: Principal, company_id: str, name: str) -> Company:
        before = await self.get_company(company_id)
        name = check_name("name", name)
        doc = await self._c("companies").find_one_and_update(
            {"_id": company_id},
            {"$set": {"name": name, "updated_at": utcnow()}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise NotFound("company not found", "COMPANY_NOT_FOUND")
        after = Company.from_doc(doc)
        self.audit(
            audit_by(
                principal,
                "company_updated",
                company_id=company_id,
                target_type="company",
                target_id=company_id,
                before={"name": before.name},
                after={"name": after.name},
            )
        )
        return after

    # -- members -------------------------------------------------------------------------

    async def list_members(self, company_id: str) -> list[Member]:
        docs = await self._c("memberships").find({"company_id": company_id}, sort=[("_id", 1)])
        out = []
        for m in docs:
            user = await self._c("users").find_one({"_id": m["user_id"]})
            if user is not None:
                out.append(Member(User.from_doc(user), Role(m["role"]), m["created_at"]))
        return out

    def _may_grant(self, principal: Principal, role: Role) -> None:
        assert principal.role is not None
        if RANK[role] > RANK[principal.role]:
            raise PermissionDenied(f"a {principal.role} cannot grant the {role} role")

    async def _add_membership(self, company_id: str, user_id: str, role: Role) -> datetime:
        """Make `user_id` a member (on accepting an invitation); when they joined."""
        now = utcnow()
        try:
            await self._c("memberships").insert_one(
                {
                    "_id": new_id(),
                    "company_id": company_id,
                    "user_id": user_id,
                    "role": role.value,
                    "created_at": now,
                }
            )
        except DuplicateKey as e:
            raise Conflict("already a member of this company", "MEMBER_EXISTS") from e
        return now

    async def _membership(self, company_id: str, user_id: str) -> dict[str, Any]:
        doc: dict[str, Any] | None = await self._c("memberships").find_one(
            {"company_id": company_id, "user_id": user_id}
        )
        if doc is None:
            raise NotFound("member not found", "MEMBER_NOT_FOUND")
        return doc

    async def _owners(self, company_id: str) -> int:
        return int(await self._c("memberships").count({"company_id": company_id, "role": "owner"}))

    async def update_member(self, principal: Principal, user_id: str, role: Role) -> Member:
        self.forget_credentials()
        company_id = company_of(principal)
        current = await self._membership(company_id, user_id)
        if user_id == principal.user.id:
            raise PermissionDenied("you cannot change your own role")
        old = Role(current["role"])
        self._may_grant(principal, role)
        self._may_grant(principal, old)
        if old is Role.OWNER and role is not Role.OWNER and await self._owners(company_id) <= 1:
            raise Conflict("a company keeps at least one owner", "LAST_OWNER")
        await self._c("memberships").update_one(
            {"_id": current["_id"]}, {"$set": {"role": role.value}}
        )
        user = await self.get_user(user_id)
        self.forget_credentials()  # again: a lookup may have raced the write
        self.audit(
            audit_by(
                principal,
                "member_updated",
                company_id=company_id,
                target_type="member",
                target_id=user_id,
                before={"role": old.value},
                after={"role": role.value},
            )
        )
        return Member(user, role, current["created_at"])

    async def remove_member(self, principal: Principal, user_id: str) -> None:
        self.forget_credentials()
        company_id = company_of(principal)
        current = await self._membership(company_id, user_id)
        old = Role(current["role"])
        if user_id != principal.user.id:
            self._may_grant(principal, old)
        if old is Role.OWNER and await self._owners(company_id) <= 1:
            raise Conflict("a company keeps at least one owner", "LAST_OWNER")
        await self._c("memberships").delete_one({"_id": current["_id"]})
        self.forget_credentials()  # again: a lookup may have raced the write
        self.audit(
            audit_by(
                principal,
                "member_deleted",
                company_id=company_id,
                target_type="member",
                target_id=user_id,
                before={"role": old.value},
            )
        )
