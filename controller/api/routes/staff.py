"""A teacher's wake button over HTTP, for staff users and staff API tokens (a timetable system, a backup server).

    GET  /api/v1/staff/rooms   the rooms the caller may wake, with their device counts
    POST /api/v1/staff/wake    {"site": "Hillside Primary", "room": "ICT Suite", "at": "14:05"} (at: optional, the
                               site's wall clock later today): 202 with the wakes queued and skipped; 403 not
                               one of the caller's rooms; 409 nothing to wake; 422 a time already past; 429 over
                               a rate limit, with Retry-After
    GET  /api/v1/staff/wakes   the latest wakes of the caller's rooms, each with what happened to it

The rules are power/staff.py's; every request is audited there, refused ones too.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from controller.api import errors
from controller.api.auth import Principal, Role, require
from controller.api.deps import Runtime, RuntimeDep
from controller.db import session_scope
from controller.power.staff import StaffLimits, StaffRoom, StaffWake, room_wakes, staff_rooms, wake_room
from controller.power.wake import Queued, Skipped, WakeConfig, WakeRow
from controller.timeutil import utcnow

router = APIRouter(prefix="/api/v1/staff", tags=["staff"])
Staff = Annotated[Principal, Depends(require(Role.staff))]


class StaffWakeIn(BaseModel):
    site: str = Field(min_length=1, max_length=100)
    room: str = Field(min_length=1, max_length=100)
    at: time | None = Field(default=None, description="later today, the site's wall clock (HH:MM); omit for now")


class StaffWakeOut(BaseModel):
    site: str
    room: str
    due_at: datetime
    queued: list[Queued]
    skipped: list[Skipped]


def _rules(runtime: Runtime) -> tuple:
    return runtime.policies.current().placement if runtime.policies is not None else ()


def request_wake(runtime: Runtime, principal: Principal, site: str, room: str, at: time | None) -> StaffWake:
    """The one path every surface takes (API and console): the request and its audit line commit together."""
    active = runtime.policies.current() if runtime.policies is not None else None
    with session_scope(runtime.engine) as session:
        return wake_room(session, principal.actor, principal.rooms, site, room, at, utcnow(),
                         WakeConfig.from_settings(runtime.settings), StaffLimits.from_settings(runtime.settings),
                         active.policies if active else (), active.calendars if active else None,
                         active.placement if active else ())


@router.get("/rooms", response_model=list[StaffRoom])
def rooms(runtime: RuntimeDep, principal: Staff) -> list[StaffRoom]:
    with session_scope(runtime.engine) as session:
        return staff_rooms(session, principal.rooms, _rules(runtime))


@router.post("/wake", response_model=StaffWakeOut, status_code=202, responses={**errors.REFUSED, **errors.LIMITED})
async def wake(body: StaffWakeIn, runtime: RuntimeDep, principal: Staff) -> StaffWakeOut:
    result = await run_in_threadpool(request_wake, runtime, principal, body.site, body.room, body.at)
    if result.refused is not None:
        headers = {"Retry-After": str(result.retry_after)} if result.retry_after else None
        raise HTTPException(result.status, result.refused, headers=headers)
    return StaffWakeOut(site=result.site, room=result.room, due_at=result.due_at, queued=result.queued,
                        skipped=result.skipped)


@router.get("/wakes", response_model=list[WakeRow])
def wakes(runtime: RuntimeDep, principal: Staff, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[WakeRow]:
    with session_scope(runtime.engine) as session:
        return room_wakes(session, principal.rooms, limit, _rules(runtime))
