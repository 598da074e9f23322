"""The lifecycle and disposal workflow: move a device through its states, with evidence, and batches."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from controller.api.deps import RuntimeDep
from controller.api.ids import Id
from controller.db import session_scope
from controller.lifecycle import embodied, rightsize, utilisation
from controller.lifecycle.evidence import Evidence, check_method
from controller.lifecycle.recommend import Policy
from controller.lifecycle.service import NotFound, add_to_batch, create_batch, move
from controller.lifecycle.states import Refused, parse_outcome, parse_state
from controller.register.models import Device
from controller.reports.service import Inputs, ReportError, load_inputs
from controller.timeutil import utcnow
from controller.web.pages import Manager, Reader
from controller.web.render import page
from controller.web.workflow import batches, leaving, lifecycle_of

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form(max_length=200)]


@router.get("/lifecycle")
def lifecycle_home(request: Request, runtime: RuntimeDep, principal: Reader, done: str = "") -> Response:
    with Session(runtime.engine) as session:
        worklist, batch_lines = leaving(session, principal.site_ids), batches(session)
    return page(request, "lifecycle.html", principal, nav="lifecycle", worklist=worklist, batches=batch_lines,
                message={"batch": "Disposal batch saved."}.get(done))


@router.get("/lifecycle/utilisation")
def utilisation_page(request: Request, runtime: RuntimeDep, principal: Reader) -> Response:
    """Hours in use per school week and the devices to redeploy; servers' use and consolidation."""
    try:
        inputs = load_inputs(runtime.settings.resolved_policy_dir())
    except ReportError:
        inputs = Inputs()  # broken policy files: school days fall back to weekdays, as the reports do
    now = utcnow()
    with Session(runtime.engine) as session:
        use = utilisation.utilisation(session, embodied.load(session), now, Policy().underused_hours_per_week,
                                      policies=inputs.policies, calendars=inputs.calendars,
                                      site_ids=principal.site_ids)
        servers = rightsize.rightsize(session, now, site_ids=None if principal.site_ids is None
                                      else list(principal.site_ids))
    return page(request, "utilisation.html", principal, nav="lifecycle", use=use, servers=servers)


def _move_page(request: Request, session: Session, principal, device_id: int, status_code: int = 200,
               error: str | None = None, form: dict | None = None) -> Response:
    device = session.get(Device, device_id)
    if device is None:
        raise HTTPException(status_code=404, detail=f"no device with id {device_id}")
    return page(request, "move.html", principal, status_code=status_code, nav="lifecycle", device=device,
                lifecycle=lifecycle_of(session, device_id), error=error, form=form or {})


@router.get("/lifecycle/devices/{device_id}")
def move_form(request: Request, runtime: RuntimeDep, principal: Manager, device_id: Id) -> Response:
    with Session(runtime.engine) as session:
        return _move_page(request, session, principal, device_id)


@router.post("/lifecycle/devices/{device_id}")
def move_device(request: Request, runtime: RuntimeDep, principal: Manager, device_id: Id,
                target: Text, reason: Text, outcome: Text = "", method: Text = "", certificate_ref: Text = "",
                sanitised_on: Text = "", transfer_note_ref: Text = "", carrier: Text = "", recycler: Text = "",
                accreditation: Text = "", collected_on: Text = "", batch: Text = "") -> Response:
    form = {k: v for k, v in locals().items() if isinstance(v, str)}
    try:
        evidence = Evidence(method=check_method(method) if method else None,
                            certificate_ref=certificate_ref.strip() or None, sanitised_on=_day(sanitised_on),
                            transfer_note_ref=transfer_note_ref.strip() or None, carrier=carrier.strip() or None,
                            recycler=recycler.strip() or None, accreditation=accreditation.strip() or None,
                            collected_on=_day(collected_on))
        with session_scope(runtime.engine) as session:
            move(session, str(device_id), parse_state(target), reason, principal.actor,
                 outcome=parse_outcome(outcome) if outcome else None, evidence=evidence,
                 batch=batch.strip() or None)
    except (Refused, NotFound) as exc:
        with Session(runtime.engine) as session:
            return _move_page(request, session, principal, device_id, status_code=400, error=str(exc), form=form)
    return RedirectResponse(f"/devices/{device_id}?done=moved", status_code=303)


def _day(text: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise Refused(f"{text!r} is not a date (YYYY-MM-DD)") from None


@router.post("/lifecycle/batches")
def new_batch(request: Request, runtime: RuntimeDep, principal: Manager, name: Text, transfer_note_ref: Text,
              carrier: Text, recycler: Text, accreditation: Text, collected_on: Text,
              devices: Annotated[str, Form(max_length=2000)] = "") -> Response:
    try:
        collected = _day(collected_on)
        if collected is None:
            raise Refused("a disposal batch needs the date it was collected")
        with session_scope(runtime.engine) as session:
            create_batch(session, name.strip(), transfer_note_ref, carrier, recycler, accreditation, collected,
                         principal.actor)
            refs = [r.strip() for r in devices.replace("\n", ",").split(",") if r.strip()]
            if refs:
                add_to_batch(session, name.strip(), refs, principal.actor)
    except (Refused, NotFound) as exc:
        with Session(runtime.engine) as session:
            worklist, batch_lines = leaving(session, principal.site_ids), batches(session)
        return page(request, "lifecycle.html", principal, status_code=400, nav="lifecycle", worklist=worklist,
                    batches=batch_lines, error=str(exc))
    return RedirectResponse("/lifecycle?done=batch", status_code=303)
