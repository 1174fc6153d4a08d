"""Roles and the one permission table every route is checked against."""

from __future__ import annotations

import enum
from collections.abc import Mapping


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    EDITOR = "editor"
    OPERATOR = "operator"
    VIEWER = "viewer"


class Action(enum.StrEnum):
    """What a route does inside a company. Routes outside a company (login, install, listing
    one's own companies) use `PUBLIC` or `SIGNED_IN` and are not role-checked."""

    PUBLIC = "public"
    SIGNED_IN = "signed_in"
    READ = "read"
    PLAY_RUN = "play.run"
    PLAY_CANCEL = "play.cancel"
    PLAY_APPROVE = "play.approve"
    PLAY_RETRY = "play.retry"
    FLOW_WRITE = "flow.write"
    KV_WRITE = "kv.write"
    SCHEDULE_WRITE = "schedule.write"
    CHANNEL_WRITE = "channel.write"  # channels and their routes (the ways in)
    COMPONENT_WRITE = "component.write"
    CREDENTIAL_WRITE = "credential.write"
    MEMBER_MANAGE = "member.manage"
    API_KEY_MANAGE = "api_key.manage"
    AUDIT_READ = "audit.read"
    RETENTION_MANAGE = "retention.manage"  # retention policies and the jobs' statistics
    BUDGET_MANAGE = "budget.manage"  # the company's and its flows' budgets for AI calls
    ADMIN_READ = "admin.read"  # the installation's instances and actor tree
    COMPANY_MANAGE = "company.manage"


_VIEWER = frozenset({Action.READ})
_OPERATOR = _VIEWER | {
    Action.PLAY_RUN,
    Action.PLAY_CANCEL,
    Action.PLAY_APPROVE,
    Action.PLAY_RETRY,
}
_EDITOR = _OPERATOR | {
    Action.FLOW_WRITE,
    Action.KV_WRITE,
    Action.SCHEDULE_WRITE,
    Action.CHANNEL_WRITE,
}
_ADMIN = _EDITOR | {
    Action.COMPONENT_WRITE,
    Action.CREDENTIAL_WRITE,
    Action.MEMBER_MANAGE,
    Action.API_KEY_MANAGE,
    Action.AUDIT_READ,
    Action.RETENTION_MANAGE,
    Action.BUDGET_MANAGE,
    Action.ADMIN_READ,
}
_OWNER = _ADMIN | {Action.COMPANY_MANAGE}

PERMISSIONS: Mapping[Role, frozenset[Action]] = {
    Role.VIEWER: _VIEWER,
    Role.OPERATOR: frozenset(_OPERATOR),
    Role.EDITOR: frozenset(_EDITOR),
    Role.ADMIN: frozenset(_ADMIN),
    Role.OWNER: frozenset(_OWNER),
}

# How much each role may do, for "may not grant a role above your own".
RANK: Mapping[Role, int] = {
    Role.VIEWER: 0,
    Role.OPERATOR: 1,
    Role.EDITOR: 2,
    Role.ADMIN: 3,
    Role.OWNER: 4,
}


def allowed(role: Role, action: Action) -> bool:
    if action in (Action.PUBLIC, Action.SIGNED_IN):
        return True
    return action in PERMISSIONS[role]
