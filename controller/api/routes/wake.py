"""Wake-on-LAN over HTTP.

    POST /api/v1/wake            {"device": "HILL-R12-PC07"} or {"site": "Hill"} or {"site":…, "group": "ICT 2"}:
                                 queue a paced wave (network managers); 404 unknown target, 422 bad body
    GET  /api/v1/wake            wake requests, newest first (?site=&status=&limit=), every reader
    GET  /api/v1/wake/failures   devices whose latest wake failed, with the likely cause (?site=)

Readers limited to some sites see only those; a wake of a device outside a caller's sites is refused.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from controller.api.auth import READERS, Principal, Role, require
from controller.api.deps import RuntimeDep
from controller.db import session_scope
from controller.power.models import WakeStatus
from controller.power.wake import WakeConfig, WakeRefused, failed_wakes, list_wakes, request_wakes, select_devices
from controller.timeutil import utcnow

router = APIRouter(prefix="/api/v1/wake", tags=["wake"])


class WakeIn(BaseModel):
    device: str | None = Field(default=None, max_length=255, description="device id or hostname")
    site: str | None = Field(default=None, max_length=100)
    group: str | None = Field(default=None, max_length=100, description="room or group")
    reason: str = Field(default="requested over the API", max_length=400)


class QueuedOut(BaseModel):
    wake_id: int
    device_id: int
    hostname: str
    due_at: datetime


class SkippedOut(BaseModel):
    device_id: int
    hostname: str
    why: str


class WaveOut(BaseModel):
    queued: list[QueuedOut]
    skipped: list[SkippedOut]


class WakeOut(BaseModel):
    id: int
    site: str
    device_id: int
    hostname: str
    mac: str
    network: str | None
    status: str
    attempts: int
    route: str | None
    sent_by: str | None
    requested_by: str
    requested_at: datetime
    due_at: datetime
    sent_at: datetime | None
    confirmed_at: datetime | None
    failure: str | None


class FailureOut(BaseModel):
    device_id: int
    hostname: str
    site: str
    wake_id: int
    failed_at: datetime | None
    failure: str | None
    cause: str


@router.post("", response_model=WaveOut, status_code=202)
async def wake(body: WakeIn, runtime: RuntimeDep,
               principal: Annotated[Principal, Depends(require(Role.network_manager))]) -> WaveOut:
    if body.device is not None and (body.site or body.group):
        raise HTTPException(422, "give a device, or a site and/or group, not both")

    def work() -> WaveOut:
        with session_scope(runtime.engine) as session:
            devices = select_devices(session, body.device, body.site, body.group)
            hidden = sorted({d.site_id for d in devices if not principal.may_see(d.site_id)})
            if hidden:
                raise HTTPException(403, "some of these devices are in sites you may not act on")
            result = request_wakes(session, devices, body.reason, principal.actor, utcnow(),
                                   WakeConfig.from_settings(runtime.settings))
        return WaveOut(queued=[QueuedOut(**asdict(q)) for q in result.queued],
                       skipped=[SkippedOut(**asdict(s)) for s in result.skipped])

    try:
        return await run_in_threadpool(work)
    except WakeRefused as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("", response_model=list[WakeOut])
def wakes(runtime: RuntimeDep, principal: Annotated[Principal, Depends(require(*READERS))],
          site: str | None = None, status: WakeStatus | None = None,
          limit: Annotated[int, Query(ge=1, le=10_000)] = 200) -> list[WakeOut]:
    with session_scope(runtime.engine) as session:
        rows = list_wakes(session, site, status.value if status else None, limit)
    return [WakeOut(**{k: v for k, v in asdict(r).items() if k != "site_id"}) for r in rows
            if principal.may_see(r.site_id)]


@router.get("/failures", response_model=list[FailureOut])
def failures(runtime: RuntimeDep, principal: Annotated[Principal, Depends(require(*READERS))],
             site: str | None = None) -> list[FailureOut]:
    with session_scope(runtime.engine) as session:
        rows = failed_wakes(session, site)
    return [FailureOut(**{k: v for k, v in asdict(r).items() if k != "site_id"}) for r in rows
            if principal.may_see(r.site_id)]
