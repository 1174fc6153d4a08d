"""The module catalog: what a flowlet's appId may name, with its argument schema."""

from __future__ import annotations

from flow8.services.identity import Action
from flow8.services.modules import ModuleCatalog

from ._api import Req, Routes
from ._context import app
from ._engine_models import ModuleOut
from ._page import PageQuery, page_of, slice_page
from .exceptions import NotFound

routes = Routes("modules", "modules")


def _catalog() -> ModuleCatalog:
    catalog = app().deps.modules
    if catalog is None:
        raise NotFound("the module catalog is not available on this instance")
    return catalog


def _out(entry: dict[str, object]) -> ModuleOut:
    return ModuleOut(
        str(entry["appId"]),
        str(entry["category"]),
        str(entry["description"]),
        bool(entry["idempotent"]),
        dict(entry.get("argsSchema") or {}),  # type: ignore[call-overload]
        dict(entry.get("outputSchema") or {}),  # type: ignore[call-overload]
    )


@routes.route(
    "GET",
    "/api/modules",
    action=Action.READ,
    summary="The module catalog",
    query=PageQuery,
    response=page_of(ModuleOut),
)
async def list_modules(req: Req) -> object:
    return slice_page(ModuleOut, [_out(e) for e in _catalog().list()], req.query)


@routes.route(
    "GET",
    "/api/modules/{appId}",
    action=Action.READ,
    summary="One module",
    response=ModuleOut,
    errors=(404,),
)
async def get_module(req: Req, appId: str) -> ModuleOut:
    entry = _catalog().describe(appId)
    if entry is None:
        raise NotFound("module not found", code="MODULE_NOT_FOUND")
    return _out(entry)
