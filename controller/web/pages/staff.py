"""A teacher's wake button: a small page, made for a phone, listing the staff member's rooms with a button to
wake each now or at a time later today, and which of the room's PCs woke. The rules (only their rooms,
limits, exams, the audit) are power/staff.py's, reached through the same call as the API."""

from __future__ import annotations

from datetime import time
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from controller.api.deps import RuntimeDep
from controller.api.routes.staff import request_wake
from controller.power.staff import room_wakes, staff_rooms
from controller.web.pages import Staff
from controller.web.render import page

router = APIRouter(include_in_schema=False)


def _staff_page(request: Request, runtime: RuntimeDep, principal, status_code: int = 200,
                headers: dict[str, str] | None = None, **context) -> Response:
    with Session(runtime.engine) as session:
        rules = runtime.policies.current().placement if runtime.policies is not None else ()
        rooms, wakes = staff_rooms(session, principal.rooms, rules), room_wakes(session, principal.rooms, 30, rules)
    return page(request, "staff.html", principal, status_code=status_code, headers=headers, nav="staff",
                rooms=rooms, wakes=wakes, **context)


@router.get("/staff")
def staff_home(request: Request, runtime: RuntimeDep, principal: Staff, done: str = "") -> Response:
    return _staff_page(request, runtime, principal, message=done[:200] or None)


@router.post("/staff/wake")
def staff_wake(request: Request, runtime: RuntimeDep, principal: Staff, site: Annotated[str, Form(max_length=100)],
               room: Annotated[str, Form(min_length=1, max_length=100)],
               at: Annotated[time | None, Form()] = None) -> Response:
    result = request_wake(runtime, principal, site, room, at)
    if result.refused is not None:
        headers = {"Retry-After": str(result.retry_after)} if result.retry_after else None
        return _staff_page(request, runtime, principal, status_code=result.status, headers=headers,
                           error=f"{room}: {result.refused}")
    when = f"at {at:%H:%M}" if at is not None else "now"
    skipped = f"; not woken: {', '.join(s.hostname for s in result.skipped)}" if result.skipped else ""
    return RedirectResponse(f"/staff?done={len(result.queued)} PC(s) in {room} will be woken {when}{skipped}",
                            status_code=303)
