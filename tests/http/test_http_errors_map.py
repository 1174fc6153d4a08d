"""Errors no mapping knows become a generic 500 that is logged, never echoed."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from flow8.engine import EngineError
from flow8.http._errors_map import from_credentials, from_engine, from_identity, from_store
from flow8.services import credentials as cred
from flow8.services import identity as ident
from flow8.store import StoreError

SECRET = "password=hunter2 for ada@example.com"


@pytest.mark.parametrize(
    ("mapper", "error"),
    [
        (from_identity, ident.IdentityError(SECRET)),
        (from_engine, EngineError(SECRET)),
        (from_store, StoreError(SECRET)),
        (from_credentials, cred.CredentialError(SECRET)),
    ],
)
def test_an_unmapped_error_is_a_logged_generic_500(mapper: object, error: Exception) -> None:
    with capture_logs() as logs:
        api_error = mapper(error)  # type: ignore[operator]
    assert api_error.status == 500
    assert api_error.code == "INTERNAL_ERROR"
    assert SECRET not in str(api_error.body())
    assert [entry["event"] for entry in logs] == ["http.unmapped_error"]
    assert logs[0]["error"] == type(error).__name__
    assert logs[0]["exc_info"] is error
