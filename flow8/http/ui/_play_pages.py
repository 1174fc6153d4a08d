"""Pages of the plays area: the list (filters in the address), and the live play view with
its layers and the operator commands (approve, reject, cancel, retry from a step).

The live view renders two fragments, the play's summary and one page of its layers; its
script (`static/js/play_view.js`) listens on `/ws` and fetches a fragment again on each
event, so the page is always rendered by these templates, never rebuilt in JavaScript."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from quart import Response

from flow8.domain import Play, PlayState, WaitReason
from flow8.services.flows import FlowNotFound
from flow8.services.identity import Action

from .._api import audit_change
from .._context import flow_service, play_service
from ..exceptions import ValidationFailed
from ._pages import PageReq, Pages, redirect, render

pages = Pages("plays")

PLAY_ROWS = 25
LAYER_ROWS = 100  # the page size of play_service().layers
FLOW_CHOICES = 100  # the flow filter offers the most recently changed flows, no more
_CANCELLABLE = frozenset({PlayState.NEW, PlayState.DEFERRED, PlayState.RUN, PlayState.WAIT})
_RETRYABLE = frozenset({PlayState.FAIL, PlayState.CANCEL})


def _page_number(value: str | None) -> int:
    try:
        number = int(value or 0)
    except ValueError:
        return 0
    return min(max(number, 0), 1_000_000)


def _moment(value: str) -> datetime:
    """A `datetime-local` value (or any ISO 8601 time) as UTC; a naive time is UTC."""
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def _flow_name(company_id: str, flow_id: str, version: int | None = None) -> str | None:
    try:
        return (await flow_service().get(company_id, flow_id, version)).definition.name
    except FlowNotFound:
        return None  # deleted since: the page shows its id


@pages.get("/plays", action=Action.READ)
async def list_plays(page: PageReq) -> Response:
    args = page.args
    flow_id = args.get("flow_id", "").strip()
    state_text = args.get("state", "").strip()
    since_text = args.get("from", "").strip()
    until_text = args.get("until", "").strip()
    errors: dict[str, str] = {}
    state: PlayState | None = None
    since: datetime | None = None
    until: datetime | None = None
    if state_text:
        try:
            state = PlayState(state_text)
        except ValueError:
            errors["state"] = f"not a play state: {state_text[:40]}"
    if len(flow_id) > 64:
        errors["flow_id"] = "a flow id has at most 64 characters"
    for name, text in (("from", since_text), ("until", until_text)):
        if text:
            try:
                moment = _moment(text)
            except ValueError:
                errors[name] = "not a date and time (YYYY-MM-DDTHH:MM)"
                continue
            if name == "from":
                since = moment
            else:
                until = moment
    number = _page_number(args.get("page"))
    company = page.company_id
    plays: list[Play] = []
    total = 0
    if not errors:
        plays, total = await play_service().list(
            company,
            flow_id=flow_id or None,
            state=state,
            created_from=since,
            created_before=until,
            page=number,
            size=PLAY_ROWS,
        )
    # Names only, in two queries whatever the page holds: the picker's recent flows, then
    # the flows of this page's plays (and the chosen one) that are not among them.
    choices, more_flows = await flow_service().names(company, limit=FLOW_CHOICES)
    names: dict[str, str] = dict(choices)
    chosen = flow_id if flow_id and not errors.get("flow_id") else None
    wanted = {p.flow_id for p in plays} | ({chosen} if chosen else set())
    missing = wanted - names.keys()
    names.update(await flow_service().names_of(company, sorted(missing)))
    if chosen in missing:  # a flow chosen by its address, older than the picker's choices
        choices.append((chosen, names.get(chosen, f"{chosen} (not found)")))
    params = {
        k: v
        for k, v in (
            ("flow_id", flow_id),
            ("state", state_text),
            ("from", since_text),
            ("until", until_text),
        )
        if v
    }
    pages_count = max(1, -(-total // PLAY_ROWS))
    return render(
        page,
        "plays/list.html",
        status=422 if errors else 200,
        plays=plays,
        total=total,
        page_number=number,
        pages_count=pages_count,
        params=params,
        errors=errors,
        flow_choices=choices,
        more_flows=more_flows,
        flow_choice_limit=FLOW_CHOICES,
        flow_names=names,
        states=[s.value for s in PlayState],
        filters={"flow_id": flow_id, "state": state_text, "from": since_text, "until": until_text},
    )


def _duration(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, end - start)


async def _summary_context(page: PageReq, play: Play) -> dict[str, Any]:
    company = page.company_id
    flow_name = await _flow_name(company, play.flow_id, play.flow_version)
    refs: list[str] = []
    if play.state in _RETRYABLE and page.may(Action.PLAY_RETRY):
        try:  # a retry runs the latest version: its steps are the ones to choose from
            latest = await flow_service().get(company, play.flow_id)
            refs = [f.ref for f in latest.definition.flowlets]
        except FlowNotFound:
            refs = []
    awaiting = play.state is PlayState.WAIT and play.wait_reason is WaitReason.APPROVAL
    return {
        "play": play,
        "flow_name": flow_name,
        "play_duration": _duration(play.started_at, play.finished_at),
        "awaiting_approval": awaiting,
        "can_cancel": play.state in _CANCELLABLE,
        "retry_refs": refs,
        "default_ref": play.resume_from or (refs[0] if refs else ""),
    }


async def _layers_context(page: PageReq, play_id: str, number: int) -> dict[str, Any]:
    layers, total = await play_service().layers(
        page.company_id, play_id, page=number, size=LAYER_ROWS
    )
    rows = [(layer, _duration(layer.started_at, layer.finished_at)) for layer in layers]
    return {
        "play_id": play_id,
        "layers": rows,
        "layer_total": total,
        "layer_page": number,
        "layer_pages": max(1, -(-total // LAYER_ROWS)),
        "layer_size": LAYER_ROWS,
    }


@pages.get("/plays/<play_id>", action=Action.READ)
async def view_play(page: PageReq, play_id: str) -> Response:
    play = await play_service().get(page.company_id, play_id)
    context = await _summary_context(page, play)
    context.update(await _layers_context(page, play_id, _page_number(page.args.get("layers"))))
    return render(page, "plays/view.html", **context)


@pages.get("/plays/<play_id>/summary", action=Action.READ)
async def play_summary(page: PageReq, play_id: str) -> Response:
    play = await play_service().get(page.company_id, play_id)
    return render(page, "plays/_summary.html", **await _summary_context(page, play))


@pages.get("/plays/<play_id>/layers", action=Action.READ)
async def play_layers(page: PageReq, play_id: str) -> Response:
    number = _page_number(page.args.get("page"))
    return render(page, "plays/_layers.html", **await _layers_context(page, play_id, number))


async def _after_command(page: PageReq, play: Play) -> Response:
    """htmx swaps the new summary in; a browser without script sees the play's page."""
    if page.htmx:
        return render(page, "plays/_summary.html", **await _summary_context(page, play))
    return redirect(page, f"/plays/{play.id}")


@pages.post("/plays/<play_id>/cancel", action=Action.PLAY_CANCEL)
async def cancel_play(page: PageReq, play_id: str) -> Response:
    play = await play_service().cancel(page.company_id, play_id)
    audit_change(
        page.as_req(), "play_cancelled", "play", play_id, after={"state": play.state.value}
    )
    return await _after_command(page, play)


@pages.post("/plays/<play_id>/approve", action=Action.PLAY_APPROVE)
async def approve_play(page: PageReq, play_id: str) -> Response:
    play = await play_service().approve(page.company_id, play_id, by=page.user.user.id)
    audit_change(page.as_req(), "play_approved", "play", play_id, after={"state": play.state.value})
    return await _after_command(page, play)


@pages.post("/plays/<play_id>/reject", action=Action.PLAY_APPROVE)
async def reject_play(page: PageReq, play_id: str) -> Response:
    play = await play_service().reject(page.company_id, play_id, by=page.user.user.id)
    audit_change(page.as_req(), "play_rejected", "play", play_id, after={"state": play.state.value})
    return await _after_command(page, play)


@pages.post("/plays/<play_id>/retry", action=Action.PLAY_RETRY)
async def retry_play(page: PageReq, play_id: str) -> Response:
    from_ref = page.form.get("from_ref", "").strip()
    if not from_ref or len(from_ref) > 200:
        raise ValidationFailed([{"field": "fromRef", "message": "choose the step to retry from"}])
    play = await play_service().retry(page.company_id, play_id, from_ref)
    audit_change(
        page.as_req(),
        "play_retried",
        "play",
        play.id,
        details={"retryOf": play_id, "fromRef": from_ref},
    )
    return redirect(page, f"/plays/{play.id}")
