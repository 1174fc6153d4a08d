"""Child specs for the supervision tree and the functions behind ``flow8 run`` /
``flow8 modules list``."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import trio

import actors
from flow8.domain import (
    FlowValidationError,
    Problem,
    Trigger,
    TriggerKind,
    parse_flow_definition,
)
from flow8.modules import ModuleRegistry, default_registry
from flow8.store import Keyring, Store, invalid_text_in, open_store

from ._engine import Engine
from ._events import EventBus
from ._exceptions import EngineError
from ._settings import EngineSettings

CLI_COMPANY = "local"


def events_child(bus: EventBus, *, id: str = "events") -> actors.ChildSpec:
    """The ``events`` actor: holds the bus for the lifetime of the tree."""
    return actors.task(id, bus.serve, shutdown=1.0)


def engine_child(engine: Engine, *, id: str = "engine") -> actors.ChildSpec:
    """The ``engine`` supervisor (one_for_one): the ``plays`` dynamic supervisor (one
    temporary PlayActor per running play) and the ``dispatcher``.

    After ``open_runtime``, call ``engine.attach(runtime.dynamic_supervisor("engine/plays"))``
    so plays run under ``plays``; until then the dispatcher runs them in its own nursery.
    """
    return actors.supervisor(
        id,
        [
            actors.dynamic_supervisor("plays", max_children=engine.settings.max_running_plays),
            actors.task("dispatcher", engine.serve, shutdown=5.0),
        ],
        strategy=actors.Strategy.ONE_FOR_ONE,
        intensity=3,
        period=5.0,
    )


def module_catalog(registry: ModuleRegistry | None = None) -> list[dict[str, Any]]:
    """Every module (appId, category, description, idempotent, args/output schema)."""
    return (registry or default_registry()).catalog()


def _store_url(store_url: str | None, data_dir: str | os.PathLike[str]) -> str:
    return store_url or f"sqlite:///{Path(data_dir).resolve() / 'flow8.db'}"


async def _run_one(
    store: Store,
    flow_id: str | None,
    definition: Any,
    input: Any,
    company_id: str,
    settings: EngineSettings | None,
) -> dict[str, Any] | EngineError | FlowValidationError:
    """Run one play; bad input comes back as the error (not raised through nurseries,
    which would wrap it in exception groups)."""
    engine = Engine(store, EventBus(), settings)
    try:
        if flow_id is None:
            flow_id = (await engine.flows.create(company_id, definition)).id
        else:
            await engine.flows.get(company_id, flow_id)
    except (EngineError, FlowValidationError) as e:
        return e
    outcome: dict[str, Any] | EngineError
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.serve)
        try:
            play = await engine.start_play(
                company_id, flow_id, input, trigger=Trigger(TriggerKind.CLI)
            )
        except EngineError as e:  # e.g. input that does not match the inputSchema
            outcome = e
        else:
            done = await engine.wait_play(company_id, play.id)
            outcome = {
                "playId": done.id,
                "state": done.state.value,
                "out": done.output,
                "error": done.error,
            }
        nursery.cancel_scope.cancel()
    return outcome


def _result(outcome: dict[str, Any] | EngineError | FlowValidationError) -> dict[str, Any]:
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


async def run_flow_file(
    path: str | os.PathLike[str],
    input: Any = None,
    *,
    store_url: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    company_id: str = CLI_COMPANY,
    settings: EngineSettings | None = None,
) -> dict[str, Any]:
    """``flow8 run FILE.json``: store the flow file as a new flow and run it in-process.

    Returns ``{"playId", "state", "out", "error"}``; the CLI exits 0 when state is DONE.
    Raises :class:`flow8.domain.FlowValidationError` (every problem listed) for a bad file
    and :class:`InvalidInput` for input that does not match the flow's ``inputSchema``.
    """
    try:
        data = json.loads(await trio.Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FlowValidationError([Problem("", f"cannot read flow file {path}: {e}")]) from e
    bad_text = invalid_text_in(data)
    if bad_text is not None:
        raise FlowValidationError([Problem(*bad_text)])
    definition = parse_flow_definition(data)
    # A throwaway store gets a throwaway key: nothing outlives the run, so no key file (and
    # no warning about one) is written.
    keys = Keyring.generate("run") if data_dir is None and store_url is None else None
    with tempfile.TemporaryDirectory() if data_dir is None else _nullcontext(data_dir) as d:
        async with open_store(_store_url(store_url, d), data_dir=d, encryption=keys) as store:
            outcome = await _run_one(store, None, definition, input, company_id, settings)
    return _result(outcome)


async def run_stored_flow(
    flow_id: str,
    input: Any = None,
    *,
    store_url: str | None = None,
    data_dir: str | os.PathLike[str],
    company_id: str = CLI_COMPANY,
    settings: EngineSettings | None = None,
) -> dict[str, Any]:
    """``flow8 run --flow ID``: run a stored flow (latest version) in-process.

    Raises :class:`FlowNotFound` when ``flow_id`` is not stored for ``company_id`` and
    :class:`InvalidInput` for input that does not match the flow's ``inputSchema``."""
    async with open_store(_store_url(store_url, data_dir), data_dir=data_dir) as store:
        return await run_stored_flow_on(
            store, flow_id, input, company_id=company_id, settings=settings
        )


async def run_stored_flow_on(
    store: Store,
    flow_id: str,
    input: Any = None,
    *,
    company_id: str = CLI_COMPANY,
    settings: EngineSettings | None = None,
) -> dict[str, Any]:
    """Run a stored flow on an open store (the CLI opens it as configured, key ring included);
    errors as for :func:`run_stored_flow`."""
    return _result(await _run_one(store, flow_id, None, input, company_id, settings))


class _nullcontext:
    def __init__(self, value: str | os.PathLike[str]) -> None:
        self.value = value

    def __enter__(self) -> str | os.PathLike[str]:
        return self.value

    def __exit__(self, *_: object) -> None:
        return None
