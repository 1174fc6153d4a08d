"""Pages of the workspace area: the KV browser and the credentials ("links") of the current
company. Members, invitations, API keys and the account are in `_member_pages.py`; the audit
trail and the actor tree in `_audit_pages.py`.

Each page calls the service methods the matching REST route calls (`_kv_routes.py`,
`_credential_routes.py`) and records the same audit entries."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode, urlsplit

from quart import Response

from flow8.services.credentials import RULES, TYPES, FieldRule, InvalidCredential, OAuthError
from flow8.services.identity import Action

from .._api import audit_change
from .._context import credential_service, kv_service
from .._credential_routes import callback_url
from .._errors_map import api_error_of
from .._kv_routes import _scope_args
from ..exceptions import NotFound, ValidationFailed
from ._pages import PageReq, Pages, field_errors, redirect, render

pages = Pages("workspace")

PAGE_SIZE = 25
KV_SCOPES = ("global", "flow", "flow_group")
TTL_MAX = 10 * 365 * 86400
# Data fields a person may see again while typing (names, ids, URLs); every other field of a
# credential is a secret: a password input, never echoed back into a page.
VISIBLE_FIELDS = frozenset(
    {
        "header",
        "query",
        "username",
        "clientId",
        "tokenUrl",
        "scopes",
        "provider",
        "authorizeUrl",
        "grant",
    }
)
GENERIC_ROWS = 4


def _int(value: str | None, default: int = 0) -> int:
    try:
        return max(0, int(value or default))
    except ValueError:
        return default


def _mapped(error: Exception) -> ValidationFailed:
    """The 422 a service error stands for; anything else goes on to the error page."""
    mapped = api_error_of(error)
    if not isinstance(mapped, ValidationFailed):
        raise error
    return mapped


# -- KV ------------------------------------------------------------------------------------


def _kv_scope(args: Any) -> tuple[str, str]:
    scope = args.get("scope", "global")
    if scope not in KV_SCOPES:
        scope = "global"
    return scope, (args.get("scope_key") or "").strip()


async def _kv_rows(page: PageReq, scope: str, scope_key: str) -> list[dict[str, Any]]:
    args = _scope_args(scope, scope_key or None)
    return await kv_service().list(page.company_id, **args)  # type: ignore[arg-type]


async def _kv_page(
    page: PageReq,
    *,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notice: str = "",
) -> Response:
    scope, scope_key = _kv_scope(page.args)
    prefix = page.args.get("prefix", "")
    number = _int(page.args.get("page"))
    rows: list[dict[str, Any]] = []
    scope_error = ""
    try:
        rows = await _kv_rows(page, scope, scope_key)
    except ValidationFailed as error:
        scope_error = error.fields[0]["message"]
    if prefix:
        # The service lists one scope by key; the prefix narrows that list here.
        rows = [r for r in rows if r["key"].startswith(prefix)]
    total = len(rows)
    pages_count = (total + PAGE_SIZE - 1) // PAGE_SIZE
    shown = rows[number * PAGE_SIZE : (number + 1) * PAGE_SIZE]
    params = {"scope": scope, "scope_key": scope_key, "prefix": prefix}
    return render(
        page,
        "workspace/kv.html",
        status=status,
        rows=shown,
        total=total,
        number=number,
        pages_count=pages_count,
        params={k: v for k, v in params.items() if v},
        scope=scope,
        scope_key=scope_key,
        prefix=prefix,
        scopes=KV_SCOPES,
        scope_error=scope_error,
        values=values or {"scope": scope, "scope_key": scope_key},
        errors=errors or {},
        notice=notice,
    )


@pages.get("/kv", action=Action.READ)
async def kv_list(page: PageReq) -> Response:
    notice = ""
    if page.args.get("deleted"):
        notice = f"Deleted {page.args['deleted']}."
    return await _kv_page(page, notice=notice)


@pages.get("/kv/entry", action=Action.READ)
async def kv_entry(page: PageReq) -> Response:
    scope, scope_key = _kv_scope(page.args)
    key = page.args.get("key", "")
    rows = await _kv_rows(page, scope, scope_key)
    entry = next((r for r in rows if r["key"] == key), None)
    if entry is None:
        raise NotFound("KV entry not found", code="KV_NOT_FOUND")
    return render(
        page,
        "workspace/kv_entry.html",
        entry=entry,
        scope=scope,
        scope_key=scope_key,
        saved=bool(page.args.get("saved")),
    )


def _kv_form(page: PageReq) -> tuple[dict[str, str], dict[str, str], dict[str, Any]]:
    """The set form's values as typed, its problems by field, and the parsed entry."""
    values = {
        k: page.form.get(k, "") for k in ("key", "value", "scope", "scope_key", "ttl_seconds")
    }
    values["secret"] = "on" if page.form.get("secret") else ""
    errors: dict[str, str] = {}
    key = values["key"]
    if not 1 <= len(key) <= 256:
        errors["key"] = "must be 1 to 256 characters"
    parsed: Any = None
    try:
        parsed = json.loads(values["value"])
    except ValueError as error:
        errors["value"] = f"is not valid JSON ({error})"
    ttl: float | None = None
    if values["ttl_seconds"].strip():
        try:
            ttl = float(values["ttl_seconds"])
        except ValueError:
            ttl = None
        if ttl is None or not 1 <= ttl <= TTL_MAX:
            errors["ttl_seconds"] = f"must be a number of seconds from 1 to {TTL_MAX}"
    if values["scope"] not in KV_SCOPES:
        errors["scope"] = f"must be one of {', '.join(KV_SCOPES)}"
    entry = {"value": parsed, "ttl_seconds": ttl, "secret": True if values["secret"] else None}
    return values, errors, entry


_KV_FIELDS = {"scopeKey": "scope_key", "ttlSeconds": "ttl_seconds", "(body)": "value"}


@pages.post("/kv", action=Action.KV_WRITE)
async def kv_set(page: PageReq) -> Response:
    values, errors, entry = _kv_form(page)
    if not errors:
        scope, scope_key = values["scope"], values["scope_key"].strip()
        try:
            args = _scope_args(scope, scope_key or None)
            await kv_service().set(
                page.company_id,
                values["key"],
                entry["value"],
                ttl_seconds=entry["ttl_seconds"],
                secret=entry["secret"],
                **args,  # type: ignore[arg-type]
            )
        except Exception as error:
            problems = field_errors(_mapped(error))
            errors = {_KV_FIELDS.get(k, k): v for k, v in problems.items()}
        else:
            # As the API: the trail records which entry changed, never its value.
            details = {"scope": scope, "scopeKey": scope_key or None, "secret": entry["secret"]}
            audit_change(page.as_req(), "kv_set", "kv", values["key"], details=details)
            query = {"key": values["key"], "scope": scope, "scope_key": scope_key, "saved": "1"}
            return redirect(page, "/kv/entry?" + _query(query))
    return await _kv_page(page, status=422, values=values, errors=errors)


@pages.post("/kv/delete", action=Action.KV_WRITE)
async def kv_delete(page: PageReq) -> Response:
    key = page.form.get("key", "")
    scope, scope_key = _kv_scope(page.form)
    args = _scope_args(scope, scope_key or None)
    deleted = await kv_service().delete(page.company_id, key, **args)  # type: ignore[arg-type]
    if not deleted:
        raise NotFound("KV entry not found", code="KV_NOT_FOUND")
    details = {"scope": scope, "scopeKey": scope_key or None}
    audit_change(page.as_req(), "kv_deleted", "kv", key, details=details)
    return redirect(page, "/kv?" + _query({"scope": scope, "scope_key": scope_key, "deleted": key}))


def _query(params: dict[str, str]) -> str:
    return urlencode({k: v for k, v in params.items() if v})


# -- credentials ---------------------------------------------------------------------------


def _secret(rule: FieldRule) -> bool:
    return rule.name not in VISIBLE_FIELDS


def _credential_data(type_: str, form: Any) -> dict[str, Any]:
    """The data object of the create form: blank optional fields are left out."""
    data: dict[str, Any] = {}
    if type_ == "generic":
        for i in range(GENERIC_ROWS):
            name = form.get(f"gname-{i}", "").strip()
            if name:
                data[name] = form.get(f"gvalue-{i}", "")
        return data
    for rule in RULES.get(type_, ()):
        raw = form.get(f"data.{rule.name}", "")
        if rule.is_list:
            items = [s for s in re.split(r"[\s,]+", raw) if s]
            if items:
                data[rule.name] = items
        elif raw:
            data[rule.name] = raw
    return data


async def _credentials_page(
    page: PageReq,
    *,
    status: int = 200,
    new_type: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    problem: str = "",
) -> Response:
    number = _int(page.args.get("page"))
    type_filter = page.args.get("type") or None
    if type_filter not in TYPES:
        type_filter = None
    rows, total = await credential_service().list(
        page.company_id, page=number, size=PAGE_SIZE, type=type_filter
    )
    chosen = new_type or page.args.get("new") or ""
    if chosen not in TYPES:
        chosen = ""
    return render(
        page,
        "workspace/credentials.html",
        status=status,
        rows=rows,
        total=total,
        number=number,
        pages_count=(total + PAGE_SIZE - 1) // PAGE_SIZE,
        type_filter=type_filter or "",
        types=TYPES,
        new_type=chosen,
        rules=RULES.get(chosen, ()),
        secret=_secret,
        generic_rows=GENERIC_ROWS,
        values=values or {},
        errors=errors or {},
        created=page.args.get("created", ""),
        deleted=page.args.get("deleted", ""),
        connected=page.args.get("connected", ""),
        problem=problem,
    )


@pages.get("/credentials", action=Action.READ)
async def credentials_list(page: PageReq) -> Response:
    return await _credentials_page(page)


@pages.post("/credentials", action=Action.CREDENTIAL_WRITE)
async def credential_create(page: PageReq) -> Response:
    type_ = page.form.get("type", "")
    name = page.form.get("name", "")
    description = page.form.get("description", "").strip() or None
    data = _credential_data(type_, page.form)
    try:
        made = await credential_service().create(
            page.company_id,
            name,
            type_,
            data,
            description=description,
            created_by=page.user.user.id,
        )
    except Exception as error:
        mapped = api_error_of(error)
        if mapped is not None and mapped.status == 409:  # the name is taken
            problems = {"name": mapped.message}
        else:
            problems = field_errors(_mapped(error))
        # Only what is not secret is typed back into the form.
        values = {"name": name, "description": description or ""}
        for rule in RULES.get(type_, ()):
            if not _secret(rule):
                values[f"data.{rule.name}"] = page.form.get(f"data.{rule.name}", "")
        for i in range(GENERIC_ROWS):
            values[f"gname-{i}"] = page.form.get(f"gname-{i}", "")
        return await _credentials_page(
            page, status=422, new_type=type_, values=values, errors=problems
        )
    audit_change(page.as_req(), "credential_created", "credential", made.id, after=made.summary())
    return redirect(page, "/credentials?" + _query({"created": made.name}))


@pages.post("/credentials/<credential_id>/delete", action=Action.CREDENTIAL_WRITE)
async def credential_delete(page: PageReq, credential_id: str) -> Response:
    gone = await credential_service().delete(page.company_id, credential_id)
    before = gone.summary()
    audit_change(page.as_req(), "credential_deleted", "credential", credential_id, before=before)
    return redirect(page, "/credentials?" + _query({"deleted": gone.name}))


@pages.post("/credentials/<credential_id>/connect", action=Action.CREDENTIAL_WRITE)
async def credential_connect(page: PageReq, credential_id: str) -> Response:
    """Connect an oauth2 credential: off to the provider (authorization code; it comes back
    to /auth/callback, which returns here), or a token fetched at once (client credentials)."""
    service = credential_service()
    try:
        try:
            started = await service.oauth2_authorize(
                page.company_id, credential_id, page.user.user.id, callback_url()
            )
        except InvalidCredential as error:
            if not any(p.field == "data.grant" for p in error.problems):
                raise
        else:
            # A page that navigates on, not a redirect: the form's CSP (form-action 'self')
            # forbids following a form post to another origin.
            name = (await service.get(page.company_id, credential_id)).name
            host = urlsplit(started.url).netloc
            return render(
                page, "workspace/oauth_connect.html", name=name, url=started.url, host=host
            )
        got = await service.oauth2_token(page.company_id, credential_id)
    except (InvalidCredential, OAuthError) as error:
        return await _credentials_page(page, status=api_status(error), problem=str(error))
    audit_change(
        page.as_req(), "credential_token_fetched", "credential", credential_id, after=got.summary()
    )
    return redirect(page, "/credentials?" + _query({"connected": got.name}))


def api_status(error: Exception) -> int:
    mapped = api_error_of(error)
    return mapped.status if mapped is not None else 400
