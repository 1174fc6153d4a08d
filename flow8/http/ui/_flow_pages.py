"""The flows area: the list (search, group, tag and enabled filters, paging), create, import
and export, the flow editor and its save endpoint, versions with a diff and restore, and the
run dialog (a disabled flow runs only when the person ticks "Run it anyway").

Every change goes through the same service call as its REST twin in `_flow_routes.py` and is
audited with the same entry (`flow_created`, `flow_updated`, `flow_restored`,
`play_started`)."""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

import trio
from quart import Response, request

from flow8.domain import TriggerKind, flow_definition_to_api
from flow8.services.identity import Action
from flow8.services.plays import FlowDisabled

from .._api import audit_change
from .._context import app, component_service, flow_service, play_service
from .._errors_map import api_error_of
from ..exceptions import ApiError, NotFound, ValidationFailed
from ._pages import PageReq, Pages, field_errors, redirect, render

pages = Pages("flows")

LIST_SIZE = 25
VERSIONS_SIZE = 25
MAX_IMPORT_BYTES = 1_000_000
START_TIMEOUT = 30.0  # as the REST run route: a stalled store answers, it does not hang


def _int_arg(page: PageReq, name: str, default: int = 0, maximum: int = 1_000_000) -> int:
    value = page.args.get(name, "")
    if value.isascii() and value.isdigit() and len(value) < 8:
        return min(int(value), maximum)
    return default


def _text_arg(page: PageReq, name: str) -> str:
    return page.args.get(name, "").strip()[:200]


def _mapped(error: Exception) -> ApiError:
    mapped = api_error_of(error)
    if mapped is None:
        raise error
    return mapped


def _json_answer(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body, default=str),
        status=status,
        headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
    )


def _error_json(error: ApiError) -> Response:
    return _json_answer(
        {"error": error.code, "message": error.message, "fields": getattr(error, "fields", [])},
        error.status,
    )


# -- the list ---------------------------------------------------------------------------


@pages.get("/flows", action=Action.READ)
async def flow_list(page: PageReq) -> Response:
    query = _text_arg(page, "q")
    group = _text_arg(page, "group")
    tag = _text_arg(page, "tag")
    enabled = _text_arg(page, "enabled")  # "", "true" or "false"; anything else: either
    number = _int_arg(page, "page")
    flows, total = await flow_service().list(
        page.company_id,
        page=number,
        size=LIST_SIZE,
        name_prefix=query or None,
        group=group or None,
        tag=tag or None,
        enabled={"true": True, "false": False}.get(enabled),
    )
    params = {
        k: v for k, v in (("q", query), ("group", group), ("tag", tag), ("enabled", enabled)) if v
    }
    return render(
        page,
        "flows/list.html",
        flows=flows,
        total=total,
        page_number=number,
        pages=(total + LIST_SIZE - 1) // LIST_SIZE,
        params=params,
        query=query,
        group=group,
        tag=tag,
        enabled=enabled,
    )


# -- import and export ------------------------------------------------------------------


@pages.get("/flows/import", action=Action.FLOW_WRITE)
async def import_form(page: PageReq) -> Response:
    return render(page, "flows/import.html", text="", errors={})


@pages.post("/flows/import", action=Action.FLOW_WRITE)
async def import_flow(page: PageReq) -> Response:
    """A definition pasted or uploaded, as `POST /api/flows` accepts it: version 1 of a
    new flow, audited as the API's create."""
    text = page.form.get("definition", "")
    upload = (await request.files).get("file")
    if upload is not None and upload.filename:
        raw = upload.read(MAX_IMPORT_BYTES + 1)
        if len(raw) > MAX_IMPORT_BYTES:
            errors = {"file": f"the file is larger than {MAX_IMPORT_BYTES // 1000} kB"}
            return render(page, "flows/import.html", status=422, text=text, errors=errors)
        text = raw.decode("utf-8", errors="replace")
    where = "file" if upload is not None and upload.filename else "definition"
    if not text.strip():
        errors = {where: "paste a flow definition (JSON) or choose a file"}
        return render(page, "flows/import.html", status=422, text=text, errors=errors)
    try:
        data = json.loads(text)
    except ValueError as error:
        errors = {where: f"not JSON: {error}"}
        return render(page, "flows/import.html", status=422, text=text, errors=errors)
    try:
        flow = await flow_service().create(page.company_id, data)
    except Exception as error:
        mapped = _mapped(error)
        if not isinstance(mapped, ValidationFailed):
            raise
        problems = field_errors(mapped)
        return render(page, "flows/import.html", status=422, text=text, errors=problems)
    audit_change(page.as_req(), "flow_created", "flow", flow.id, after=data)
    return redirect(page, f"/flows/{flow.id}")


def _file_name(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:80]
    return f"{slug or 'flow'}.json"


@pages.get("/flows/<flow_id>/export.json", action=Action.READ)
async def export_flow(page: PageReq, flow_id: str) -> Response:
    """The definition as a file, in the shape import (and `POST /api/flows`) accepts."""
    flow = await flow_service().get(page.company_id, flow_id)
    body = json.dumps(flow_definition_to_api(flow.definition), indent=2, ensure_ascii=False)
    return Response(
        body + "\n",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{_file_name(flow.definition.name)}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


# -- the editor -------------------------------------------------------------------------


async def _editor(page: PageReq, flow_id: str | None, definition: dict[str, Any]) -> Response:
    catalog = app().deps.modules
    modules = catalog.list() if catalog is not None else []
    components = [
        {"id": c.id, "name": c.name, "kind": c.kind, "isDefault": c.is_default}
        for c in await component_service().list(page.company_id)
    ]
    return render(
        page,
        "flows/editor.html",
        flow_id=flow_id,
        definition=definition,
        editor={
            "definition": definition,
            "modules": modules,
            "components": components,
            "readOnly": not page.may(Action.FLOW_WRITE),
            "saveUrl": f"/flows/{flow_id}/save" if flow_id else "/flows/new/save",
            "flowUrl": "/flows/",
        },
    )


@pages.get("/flows/new", action=Action.FLOW_WRITE)
async def new_flow(page: PageReq) -> Response:
    """An empty editor: a flow needs a step, so the first save creates it."""
    name = _text_arg(page, "name")
    return await _editor(page, None, {"name": name, "flowlets": []})


@pages.get("/flows/<flow_id>", action=Action.READ)
async def edit_flow(page: PageReq, flow_id: str) -> Response:
    flow = await flow_service().get(page.company_id, flow_id)
    definition = flow_definition_to_api(flow.definition)
    definition.setdefault("flowlets", [])
    return await _editor(page, flow_id, definition)


async def _posted_definition() -> Any:
    data = await request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise ValidationFailed([{"field": "(body)", "message": "must be a JSON object"}])
    return data


@pages.post("/flows/new/save", action=Action.FLOW_WRITE)
async def create_flow(page: PageReq) -> Response:
    """The editor's first save: version 1, audited as `POST /api/flows`."""
    try:
        data = await _posted_definition()
        flow = await flow_service().create(page.company_id, data)
    except Exception as error:
        return _error_json(_mapped(error))
    audit_change(page.as_req(), "flow_created", "flow", flow.id, after=data)
    return _json_answer({"id": flow.id, "version": flow.version}, 201)


@pages.post("/flows/<flow_id>/save", action=Action.FLOW_WRITE)
async def save_flow(page: PageReq, flow_id: str) -> Response:
    """The editor's save: a new version, audited as `PUT /api/flows/{flowId}`."""
    try:
        data = await _posted_definition()
        before = await flow_service().get(page.company_id, flow_id)
        flow = await flow_service().update(page.company_id, flow_id, data)
    except Exception as error:
        return _error_json(_mapped(error))
    audit_change(
        page.as_req(),
        "flow_updated",
        "flow",
        flow_id,
        before=flow_definition_to_api(before.definition),
        after=data,
        details={"version": flow.version},
    )
    return _json_answer({"id": flow.id, "version": flow.version})


# -- versions ---------------------------------------------------------------------------


def _pretty(definition: Any) -> list[str]:
    return json.dumps(definition, indent=2, ensure_ascii=False).splitlines()


def _diff_rows(old: list[str], new: list[str]) -> list[tuple[str, str]]:
    """A line diff as (kind, line) rows: kind is "del", "ins", "same" or "gap" (unchanged
    lines left out, three kept around each change)."""
    rows: list[tuple[str, str]] = []
    for group in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_grouped_opcodes(3):
        if rows:
            rows.append(("gap", "…"))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                rows.extend(("same", line) for line in old[i1:i2])
                continue
            rows.extend(("del", line) for line in old[i1:i2])
            rows.extend(("ins", line) for line in new[j1:j2])
    return rows


@pages.get("/flows/<flow_id>/versions", action=Action.READ)
async def flow_versions(page: PageReq, flow_id: str) -> Response:
    flow = await flow_service().get(page.company_id, flow_id)
    number = _int_arg(page, "page")
    versions, total = await flow_service().version_times(
        page.company_id, flow_id, page=number, size=VERSIONS_SIZE
    )
    newer = _int_arg(page, "b", flow.version, flow.version)
    older = _int_arg(page, "a", max(1, newer - 1), flow.version)
    diff: list[tuple[str, str]] | None = None
    if older >= 1 and newer >= 1 and older != newer:
        a = await flow_service().get(page.company_id, flow_id, older)
        b = await flow_service().get(page.company_id, flow_id, newer)
        diff = _diff_rows(
            _pretty(flow_definition_to_api(a.definition)),
            _pretty(flow_definition_to_api(b.definition)),
        )
    return render(
        page,
        "flows/versions.html",
        flow=flow,
        versions=versions,
        total=total,
        page_number=number,
        pages=(total + VERSIONS_SIZE - 1) // VERSIONS_SIZE,
        older=older,
        newer=newer,
        diff=diff,
    )


@pages.post("/flows/<flow_id>/versions/<version>/restore", action=Action.FLOW_WRITE)
async def restore_version(page: PageReq, flow_id: str, version: str) -> Response:
    """An old version saved again as the newest, audited as the API's restore."""
    if not (version.isascii() and version.isdigit()) or int(version) < 1 or len(version) > 9:
        raise NotFound("flow version not found", code="FLOW_VERSION_NOT_FOUND")
    old = await flow_service().get(page.company_id, flow_id, int(version))
    if old.version != int(version):
        raise NotFound("flow version not found", code="FLOW_VERSION_NOT_FOUND")
    data = flow_definition_to_api(old.definition)
    data.setdefault("flowlets", [])
    before = await flow_service().get(page.company_id, flow_id)
    flow = await flow_service().update(page.company_id, flow_id, data)
    audit_change(
        page.as_req(),
        "flow_restored",
        "flow",
        flow_id,
        before=flow_definition_to_api(before.definition),
        after=data,
        details={"version": flow.version},
    )
    return redirect(page, f"/flows/{flow_id}/versions?a={old.version}&b={flow.version}")


# -- running ----------------------------------------------------------------------------


@pages.get("/flows/<flow_id>/run", action=Action.PLAY_RUN)
async def run_form(page: PageReq, flow_id: str) -> Response:
    """The run form: the dialog's body when htmx asks, a page of its own otherwise."""
    flow = await flow_service().get(page.company_id, flow_id)
    return render(page, "flows/run.html", flow=flow, text="{}", key="", errors={}, message="")


@pages.post("/flows/<flow_id>/run", action=Action.PLAY_RUN)
async def run_flow(page: PageReq, flow_id: str) -> Response:
    """Start a play as `POST /api/flows/{flowId}/run` does (a manual trigger), audited the
    same, then show it; a problem is shown beside the field it is about."""
    flow = await flow_service().get(page.company_id, flow_id)
    text = page.form.get("input", "")
    key = page.form.get("idempotency_key", "").strip() or None
    force = page.form.get("force") == "true"  # a disabled flow, run anyway on purpose

    def again(errors: dict[str, str], message: str = "", status: int = 422) -> Response:
        return render(
            page,
            "flows/run.html",
            status=status,
            flow=flow,
            text=text,
            key=key or "",
            errors=errors,
            message=message,
        )

    if key is not None and len(key) > 200:
        return again({"idempotency_key": "must be 1 to 200 characters"})
    try:
        body = json.loads(text) if text.strip() else None
    except ValueError as error:
        return again({"input": f"not JSON: {error}"})
    try:
        with trio.CancelScope(shield=True):
            play = await play_service().start(
                page.company_id,
                flow_id,
                body,
                trigger=TriggerKind.MANUAL,
                source="ui",
                idempotency_key=key,
                timeout=START_TIMEOUT,
                force=force,
            )
    except FlowDisabled:
        return again({"force": "this flow is disabled: tick the box to run it anyway"}, "", 409)
    except Exception as error:
        mapped = _mapped(error)
        fields = {
            ("input" if f["field"] == "(body)" else f["field"]): f["message"]
            for f in getattr(mapped, "fields", [])
        }
        return again(fields, "" if fields else mapped.message, mapped.status)
    audit_change(
        page.as_req(),
        "play_started",
        "play",
        play.id,
        details={"flowId": flow_id, "idempotencyKey": key is not None, "forced": force},
    )
    return redirect(page, f"/plays/{play.id}")
