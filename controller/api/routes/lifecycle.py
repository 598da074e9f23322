"""Each device's life over HTTP: moves for network managers; history, recommendations, forecast and
embodied carbon for every reading role (auditors see only their granted sites).

    POST /api/v1/lifecycle/devices/{device}/moves      {"state", "reason", "outcome"?, "evidence"?, "batch"?}
    GET  /api/v1/lifecycle/devices/{device}/history
    GET  /api/v1/lifecycle/recommendations?site=
    GET  /api/v1/lifecycle/forecast?years=5
    GET  /api/v1/lifecycle/embodied?year=&site=
    POST /api/v1/lifecycle/batches, POST /api/v1/lifecycle/batches/{name}/devices, GET …/batches/{name}

A move the rules refuse is 409 with the reason; an unknown device or batch 404.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from controller.api.auth import READERS, Principal, Role, require
from controller.api.deps import RuntimeDep
from controller.api.ids import DeviceRef
from controller.db import session_scope
from controller.lifecycle import embodied, queries, service
from controller.lifecycle.evidence import Evidence, check_method
from controller.lifecycle.recommend import Policy, Recommendation
from controller.lifecycle.states import Refused, parse_outcome, parse_state
from controller.reports.service import Inputs, ReportError, load_inputs
from controller.timeutil import utcnow

router = APIRouter(prefix="/api/v1/lifecycle", tags=["lifecycle"])
Reader = Annotated[Principal, Depends(require(*READERS))]
Manager = Annotated[Principal, Depends(require(Role.network_manager))]


class EvidenceIn(BaseModel):
    method: str | None = Field(None, description="clear, purge, destroy or recycler_certificate (NIST SP 800-88)")
    certificate_ref: str | None = Field(None, max_length=100)
    sanitised_on: date | None = None
    transfer_note_ref: str | None = Field(None, max_length=100, description="WEEE waste transfer note")
    carrier: str | None = Field(None, max_length=100)
    recycler: str | None = Field(None, max_length=100)
    accreditation: str | None = Field(None, max_length=100, description="e.g. ADISA")
    collected_on: date | None = None


class MoveIn(BaseModel):
    state: str
    reason: str = Field(min_length=1, max_length=500)
    outcome: str | None = None
    evidence: EvidenceIn | None = None
    batch: str | None = None


class HistoryOut(BaseModel):
    at: str
    actor: str
    from_state: str | None
    to_state: str
    outcome: str | None
    reason: str


class BatchIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    transfer_note_ref: str = Field(min_length=1, max_length=100)
    carrier: str = Field(min_length=1, max_length=100)
    recycler: str = Field(min_length=1, max_length=100)
    accreditation: str = Field(min_length=1, max_length=100)
    collected_on: date


class DevicesIn(BaseModel):
    devices: list[DeviceRef] = Field(min_length=1, max_length=10_000)


def _refused(exc: Exception) -> HTTPException:
    return HTTPException(404 if isinstance(exc, service.NotFound) else 409, str(exc))


@router.post("/devices/{device}/moves", response_model=service.MoveResult)
def move_device(device: DeviceRef, body: MoveIn, runtime: RuntimeDep, principal: Manager) -> service.MoveResult:
    try:
        given = body.evidence.model_dump() if body.evidence else {}
        if given.get("method"):
            given["method"] = check_method(given["method"])
        with session_scope(runtime.engine) as session:
            result = service.move(session, device, parse_state(body.state), body.reason, principal.actor,
                                  parse_outcome(body.outcome) if body.outcome else None, Evidence(**given),
                                  body.batch)
    except (Refused, service.NotFound) as exc:
        raise _refused(exc) from None
    return result


@router.get("/devices/{device}/history", response_model=list[HistoryOut])
def device_history(device: DeviceRef, runtime: RuntimeDep, principal: Reader) -> list[HistoryOut]:
    try:
        with session_scope(runtime.engine) as session:
            lines = service.history(session, device, principal.may_see)
    except (Refused, service.NotFound) as exc:
        raise _refused(exc) from None
    return [HistoryOut(**{**asdict(h), "at": h.at.isoformat()}) for h in lines]


@router.get("/recommendations", response_model=list[Recommendation])
def recommendations(runtime: RuntimeDep, principal: Reader, site: str | None = None) -> list[Recommendation]:
    try:
        inputs = load_inputs(runtime.settings.resolved_policy_dir())
    except ReportError:
        inputs = Inputs()  # broken policy files: school days fall back to weekdays, as the reports do
    with session_scope(runtime.engine) as session:
        found = queries.recommendations(session, embodied.load(session), Policy(), utcnow(), site,
                                        principal.may_see, inputs.policies, inputs.calendars)
    return found


@router.get("/forecast", response_model=list[queries.ForecastYear])
def forecast(runtime: RuntimeDep, principal: Reader,
             years: Annotated[int, Query(ge=1, le=10)] = 5) -> list[queries.ForecastYear]:
    with session_scope(runtime.engine) as session:
        rows = queries.refresh_forecast(session, embodied.load(session), Policy(), utcnow().date(), years,
                                        principal.may_see)
    return rows


@router.get("/embodied", response_model=list[queries.EmbodiedLine])
def embodied_carbon(runtime: RuntimeDep, principal: Reader, year: Annotated[int | None, Query(ge=1990, le=2200)] = None,
                    site: str | None = None) -> list[queries.EmbodiedLine]:
    today = utcnow().date()
    with session_scope(runtime.engine) as session:
        lines = queries.embodied_report(session, embodied.load(session), year or today.year, today, site,
                                        principal.may_see)
    return lines


@router.post("/batches", response_model=service.BatchView, status_code=201)
def create_batch(body: BatchIn, runtime: RuntimeDep, principal: Manager) -> service.BatchView:
    try:
        with session_scope(runtime.engine) as session:
            view = service.create_batch(session, body.name, body.transfer_note_ref, body.carrier, body.recycler,
                                        body.accreditation, body.collected_on, principal.actor)
    except Refused as exc:
        raise _refused(exc) from None
    return view


@router.post("/batches/{name}/devices", response_model=service.BatchView)
def add_to_batch(name: str, body: DevicesIn, runtime: RuntimeDep, principal: Manager) -> service.BatchView:
    try:
        with session_scope(runtime.engine) as session:
            view = service.add_to_batch(session, name, body.devices, principal.actor)
    except (Refused, service.NotFound) as exc:
        raise _refused(exc) from None
    return view


@router.get("/batches/{name}", response_model=service.BatchView, dependencies=[Depends(require(*READERS))])
def show_batch(name: str, runtime: RuntimeDep) -> service.BatchView:
    try:
        with session_scope(runtime.engine) as session:
            view = service.batch_view(session, name)
    except service.NotFound as exc:
        raise _refused(exc) from None
    return view
