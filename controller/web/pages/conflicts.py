"""Conflicts: devices kept apart (cloned images, machines enrolled from another site) and credentials used
by two machines, each with the resolutions that fit it; the same functions as `caretaker devices
--conflicts` and `caretaker device resolve` (register/conflicts.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from controller.api.deps import RuntimeDep
from controller.api.ids import Id
from controller.db import session_scope
from controller.register.conflicts import (
    FOR_DEVICE,
    FOR_SHARED,
    SHARED,
    ConflictError,
    Resolution,
    list_conflicts,
    resolve,
)
from controller.register.devices import NotFound
from controller.timeutil import utcnow
from controller.web.pages import Manager, Reader
from controller.web.render import page

router = APIRouter(include_in_schema=False)
DONE = {"resolved": "Conflict resolved; the device's change log says how and by whom."}


def _conflicts_page(request: Request, runtime: RuntimeDep, principal, status_code: int = 200, **context) -> Response:
    with Session(runtime.engine) as session:
        lines = [line for line in list_conflicts(session) if principal.may_see(line.site_id)]
    choices = {line.id: FOR_SHARED if line.kind == SHARED else FOR_DEVICE for line in lines}
    return page(request, "conflicts.html", principal, status_code=status_code, nav="conflicts", lines=lines,
                choices=choices, **context)


@router.get("/conflicts")
def conflicts(request: Request, runtime: RuntimeDep, principal: Reader, done: str = "") -> Response:
    return _conflicts_page(request, runtime, principal, message=DONE.get(done))


@router.post("/conflicts/{device_id}")
def resolve_conflict(request: Request, runtime: RuntimeDep, principal: Manager, device_id: Id,
                     resolution: Annotated[Resolution, Form()]) -> Response:
    try:
        with session_scope(runtime.engine) as session:
            resolve(session, device_id, resolution, principal.actor, utcnow())
    except (NotFound, ConflictError) as exc:
        return _conflicts_page(request, runtime, principal, status_code=409, error=str(exc))
    runtime.agents.forget_device(device_id)
    return RedirectResponse("/conflicts?done=resolved", status_code=303)
