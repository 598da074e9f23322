"""Wake-on-LAN over HTTP.

    POST /api/v1/wake            {"device": "HILL-R12-PC07"} or {"site": "Hill"} or {"site":…, "group": "ICT 2"}:
                                 queue a paced wave (network managers); 404 unknown target, 422 bad body
    GET  /api/v1/wake            wake requests, newest first, each with what happened to it in words
                                 (?site=&status=&limit=&wake=<id>&wake=<id>: a wave's own), every reader
    GET  /api/v1/wake/failures   devices whose latest wake failed, with the likely cause (?site=)

Readers limited to some sites see only those; a wake of a device outside a caller's sites is refused.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from controller.api.auth import READERS, Principal, Role, require
from controller.api.deps import RuntimeDep
from controller.api.ids import DeviceRef, Id
from controller.db import session_scope
from controller.power.models import WakeStatus
from controller.power.wake import (
    FailedWake,
    WakeConfig,
    WakeRefused,
    WakeRow,
    WaveResult,
    failed_wakes,
    list_wakes,
    request_wakes,
    select_devices,
)
from controller.timeutil import utcnow

router = APIRouter(prefix="/api/v1/wake", tags=["wake"])


class WakeIn(BaseModel):
    device: DeviceRef | None = Field(default=None, description="device id or hostname")
    site: str | None = Field(default=None, max_length=100)
    group: str | None = Field(default=None, max_length=100, description="room or group")
    reason: str = Field(default="requested over the API", max_length=400)


@router.post("", response_model=WaveResult, status_code=202)
async def wake(body: WakeIn, runtime: RuntimeDep,
               principal: Annotated[Principal, Depends(require(Role.network_manager))]) -> WaveResult:
    if body.device is not None and (body.site or body.group):
        raise HTTPException(422, "give a device, or a site and/or group, not both")

    def work() -> WaveResult:
        rules = runtime.policies.current().placement if runtime.policies is not None else ()
        with session_scope(runtime.engine) as session:
            devices = select_devices(session, body.device, body.site, body.group, rules)
            hidden = sorted({d.site_id for d in devices if not principal.may_see(d.site_id)})
            if hidden:
                raise HTTPException(403, "some of these devices are in sites you may not act on")
            return request_wakes(session, devices, body.reason, principal.actor, utcnow(),
                                 WakeConfig.from_settings(runtime.settings))

    try:
        return await run_in_threadpool(work)
    except WakeRefused as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("", response_model=list[WakeRow])
def wakes(runtime: RuntimeDep, principal: Annotated[Principal, Depends(require(*READERS))],
          site: str | None = None, status: WakeStatus | None = None,
          limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
          # A wave is looked up by the ids its POST answered, a page of them at a time: a longer query string
          # would pass what the HTTP server reads in a request line.
          wake: Annotated[list[Id] | None, Query(max_length=500, description="only these wake ids")] = None,
          ) -> list[WakeRow]:
    with session_scope(runtime.engine) as session:
        rows = list_wakes(session, site, status.value if status else None, limit, wake)
    return [r for r in rows if principal.may_see(r.site_id)]


@router.get("/failures", response_model=list[FailedWake])
def failures(runtime: RuntimeDep, principal: Annotated[Principal, Depends(require(*READERS))],
             site: str | None = None) -> list[FailedWake]:
    with session_scope(runtime.engine) as session:
        rows = failed_wakes(session, site)
    return [r for r in rows if principal.may_see(r.site_id)]
