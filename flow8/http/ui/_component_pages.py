"""Components pages: the company's components by kind, a form per provider built from the
provider's config schema (secret fields as password inputs, never shown back), make
default, test connection (inline, with htmx) and delete. Same service calls, roles and
audit entries as `_component_routes.py`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from quart import Response
from werkzeug.datastructures import MultiDict

from flow8.services.components import Component
from flow8.services.identity import Action

from .._api import audit_change
from .._context import component_service
from ..exceptions import NotFound
from ._pages import PageReq, Pages, redirect, render
from ._platform_pages import act, attempt, number

pages = Pages("components")

CONFIG = "config."  # form fields of a provider's config are named config.<field>
_LONG_TEXT = 4096  # a string field allowed longer than this is a textarea (PEM, JSON keys)


def _provider(kind: str, provider: str) -> dict[str, Any]:
    for p in component_service().providers():
        if p["kind"] == kind and p["provider"] == provider:
            return p
    raise NotFound(f"no {kind} provider named {provider!r}", code="COMPONENT_PROVIDER_NOT_FOUND")


def _control(prop: Mapping[str, Any]) -> str:
    """How a config field is typed in: text, password, number, choice (enum or yes/no),
    lines (a list of strings), JSON (an object, or a choice of shapes: an ai component's
    prices) or long text."""
    if "enum" in prop or prop.get("type") == "boolean":
        return "choice"
    if prop.get("type") in ("integer", "number"):
        return "number"
    if prop.get("type") == "object" or "anyOf" in prop:
        return "json"
    if prop.get("type") == "array":
        return "lines"
    if int(prop.get("maxLength", 0)) > _LONG_TEXT:
        return "long"
    return "text"


def _choices(prop: Mapping[str, Any]) -> list[tuple[str, str]]:
    if "enum" in prop:
        return [(str(v), str(v)) for v in prop["enum"]]
    return [("yes", "yes"), ("no", "no")]


def _typed(prop: Mapping[str, Any], text: str) -> Any:
    control = _control(prop)
    if control == "number":
        return number(text)
    if control == "lines":
        return [line.strip() for line in text.splitlines() if line.strip()]
    if control == "json":
        try:
            return json.loads(text)
        except ValueError:
            return text  # the provider's schema names the field: "must be an object"
    if prop.get("type") == "boolean":
        return {"yes": True, "no": False}.get(text, text)
    return text


def _config_of(form: MultiDict[str, str], spec: Mapping[str, Any], *, editing: bool) -> Any:
    """The config a form sets. A field left empty is absent (create) or removed (edit); a
    secret left empty keeps its stored value unless its "remove" box is ticked."""
    config: dict[str, Any] = {}
    secrets = set(spec["secretFields"])
    for key, prop in spec["configSchema"].get("properties", {}).items():
        text = form.get(CONFIG + key, "")
        if key in secrets:
            if editing and form.get(f"{CONFIG}{key}.remove") == "on":
                config[key] = None
            elif text:
                config[key] = text
        elif text.strip():
            config[key] = _typed(prop, text.strip() if _control(prop) != "long" else text)
        elif editing:
            config[key] = None
    return config


def _shown(component: Component) -> dict[str, str]:
    """A stored config's plain fields as the form shows them (secrets are never shown)."""
    shown: dict[str, str] = {}
    for key, value in component.config.items():
        if isinstance(value, bool):
            shown[key] = "yes" if value else "no"
        elif isinstance(value, dict) or (
            isinstance(value, list) and any(isinstance(v, dict | list) for v in value)
        ):
            shown[key] = json.dumps(value, indent=2)
        elif isinstance(value, list):
            shown[key] = "\n".join(str(v) for v in value)
        else:
            shown[key] = str(value)
    return shown


def _form(
    page: PageReq,
    spec: Mapping[str, Any],
    *,
    component: Component | None,
    values: Mapping[str, Any],
    errors: Mapping[str, str],
) -> Response:
    properties = spec["configSchema"].get("properties", {})
    return render(
        page,
        "platform/component_form.html",
        status=422 if errors else 200,
        spec=spec,
        controls={k: _control(p) for k, p in properties.items()},
        choices={k: _choices(p) for k, p in properties.items()},
        component=component,
        values=values,
        errors=errors,
    )


def _missing(
    form: MultiDict[str, str], spec: Mapping[str, Any], *, editing: bool
) -> dict[str, str]:
    """The required config fields left empty, each named (the service's schema check says
    only "a required property" of the config, to never quote a value)."""
    held_secrets = editing  # an edit keeps a stored secret that is left empty
    return {
        CONFIG + key: "is required"
        for key in spec["configSchema"].get("required", [])
        if not form.get(CONFIG + key, "").strip()
        and not (held_secrets and key in spec["secretFields"])
    }


def _with_missing(errors: dict[str, str], missing: dict[str, str]) -> dict[str, str]:
    if missing and errors.get("config") == "a required property":
        errors = {k: v for k, v in errors.items() if k != "config"}
    return {**missing, **errors}


def _entered(form: MultiDict[str, str], spec: Mapping[str, Any]) -> dict[str, Any]:
    """What the user typed, to show again beside the problems (never a secret)."""
    secrets = set(spec["secretFields"])
    config = {
        k[len(CONFIG) :]: v
        for k, v in form.items()
        if k.startswith(CONFIG) and k[len(CONFIG) :] not in secrets
    }
    return {"name": form.get("name", ""), "isDefault": form.get("isDefault") == "on", **config}


@pages.get("/components", action=Action.READ)
async def components(page: PageReq) -> Response:
    service = component_service()
    providers = service.providers()
    kinds: dict[str, list[dict[str, Any]]] = {}
    for p in providers:
        kinds.setdefault(p["kind"], []).append(p)
    found = await service.list(page.company_id)
    by_kind: dict[str, list[Component]] = {kind: [] for kind in kinds}
    for c in found:
        by_kind.setdefault(c.kind, []).append(c)
    builtin = {p["kind"]: p["provider"] for p in providers if p["builtinDefault"]}
    return render(page, "platform/components.html", kinds=kinds, by_kind=by_kind, builtin=builtin)


@pages.get("/components/new", action=Action.COMPONENT_WRITE)
async def new_component(page: PageReq) -> Response:
    spec = _provider(page.args.get("kind", ""), page.args.get("provider", ""))
    return _form(page, spec, component=None, values={}, errors={})


@pages.post("/components/new", action=Action.COMPONENT_WRITE)
async def create_component(page: PageReq) -> Response:
    spec = _provider(page.form.get("kind", ""), page.form.get("provider", ""))
    body = {
        "name": page.form.get("name", "").strip(),
        "kind": spec["kind"],
        "provider": spec["provider"],
        "config": _config_of(page.form, spec, editing=False),
        "isDefault": page.form.get("isDefault") == "on",
    }
    made, errors = await attempt(component_service().create(page.company_id, body))
    if made is None:
        errors = _with_missing(errors, _missing(page.form, spec, editing=False))
        return _form(page, spec, component=None, values=_entered(page.form, spec), errors=errors)
    audit_change(page.as_req(), "component_created", "component", made.id, after=made.summary())
    return redirect(page, f"/components#c-{made.id}")


@pages.get("/components/<component_id>/edit", action=Action.COMPONENT_WRITE)
async def edit_component(page: PageReq, component_id: str) -> Response:
    found = await act(component_service().get(page.company_id, component_id))
    spec = _provider(found.kind, found.provider)
    values = {"name": found.name, "isDefault": found.is_default, **_shown(found)}
    return _form(page, spec, component=found, values=values, errors={})


async def _update(page: PageReq, component_id: str, change: dict[str, Any]) -> Component:
    before, after = await act(component_service().update(page.company_id, component_id, change))
    if after is not before:
        audit_change(
            page.as_req(),
            "component_updated",
            "component",
            component_id,
            before=before.summary(),
            after=after.summary(),
        )
    return after


@pages.post("/components/<component_id>/edit", action=Action.COMPONENT_WRITE)
async def update_component(page: PageReq, component_id: str) -> Response:
    found = await act(component_service().get(page.company_id, component_id))
    spec = _provider(found.kind, found.provider)
    change = {
        "name": page.form.get("name", "").strip(),
        "config": _config_of(page.form, spec, editing=True),
        "isDefault": page.form.get("isDefault") == "on",
    }
    _, errors = await attempt(_update(page, component_id, change))
    if errors:
        errors = _with_missing(errors, _missing(page.form, spec, editing=True))
        values = _entered(page.form, spec)
        return _form(page, spec, component=found, values=values, errors=errors)
    return redirect(page, f"/components#c-{component_id}")


@pages.post("/components/<component_id>/default", action=Action.COMPONENT_WRITE)
async def make_default(page: PageReq, component_id: str) -> Response:
    await _update(page, component_id, {"isDefault": True})
    return redirect(page, f"/components#c-{component_id}")


@pages.post("/components/<component_id>/delete", action=Action.COMPONENT_WRITE)
async def delete_component(page: PageReq, component_id: str) -> Response:
    gone = await act(component_service().delete(page.company_id, component_id))
    audit_change(
        page.as_req(), "component_deleted", "component", component_id, before=gone.summary()
    )
    return redirect(page, "/components")


@pages.post("/components/<component_id>/test", action=Action.COMPONENT_WRITE)
async def test_component(page: PageReq, component_id: str) -> Response:
    """A real connection check; htmx swaps the result into the component's row."""
    result = await act(component_service().test(page.company_id, component_id))
    audit_change(
        page.as_req(), "component_tested", "component", component_id, details={"ok": result["ok"]}
    )
    return render(page, "platform/_component_test.html", result=result, component_id=component_id)
