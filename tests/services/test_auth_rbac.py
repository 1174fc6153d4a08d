"""The permission table: each role may do what `PERMISSIONS` (identity/_rbac.py) grants."""

from __future__ import annotations

import pytest

from flow8.services.identity import Action, Role, allowed
from flow8.services.identity import Role as R

EXPECTED_MIN_ROLE = {
    Action.READ: R.VIEWER,
    Action.PLAY_RUN: R.OPERATOR,
    Action.PLAY_CANCEL: R.OPERATOR,
    Action.PLAY_APPROVE: R.OPERATOR,
    Action.PLAY_RETRY: R.OPERATOR,
    Action.FLOW_WRITE: R.EDITOR,
    Action.KV_WRITE: R.EDITOR,
    Action.SCHEDULE_WRITE: R.EDITOR,
    Action.CHANNEL_WRITE: R.EDITOR,
    Action.COMPONENT_WRITE: R.ADMIN,
    Action.CREDENTIAL_WRITE: R.ADMIN,
    Action.MEMBER_MANAGE: R.ADMIN,
    Action.API_KEY_MANAGE: R.ADMIN,
    Action.AUDIT_READ: R.ADMIN,
    Action.RETENTION_MANAGE: R.ADMIN,
    Action.BUDGET_MANAGE: R.ADMIN,
    Action.ADMIN_READ: R.ADMIN,
    Action.COMPANY_MANAGE: R.OWNER,
}
ORDER = [R.VIEWER, R.OPERATOR, R.EDITOR, R.ADMIN, R.OWNER]


@pytest.mark.parametrize("action", list(EXPECTED_MIN_ROLE))
@pytest.mark.parametrize("role", list(Role))
def test_role_action_matrix(role: Role, action: Action) -> None:
    expected = ORDER.index(role) >= ORDER.index(EXPECTED_MIN_ROLE[action])
    assert allowed(role, action) is expected


def test_every_company_action_is_in_the_table() -> None:
    company_actions = set(Action) - {Action.PUBLIC, Action.SIGNED_IN}
    assert company_actions == set(EXPECTED_MIN_ROLE)
