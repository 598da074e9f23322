"""Wake a device or a room: the requests join their site's paced wave (controller.power.wake)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from controller.api.deps import RuntimeDep
from controller.api.ids import Id
from controller.db import session_scope
from controller.power.wake import WakeConfig, WakeRefused, WaveResult, list_wakes, request_wakes, select_devices
from controller.timeutil import utcnow
from controller.web.pages import Manager
from controller.web.render import confirm, page
from controller.web.views import filter_choices

router = APIRouter(include_in_schema=False)
Reason = Annotated[str, Form(min_length=1, max_length=400)]
Confirmed = Annotated[str, Form(max_length=3)]


def _wave(runtime: RuntimeDep, actor: str, reason: str, **which: str) -> WaveResult:
    with session_scope(runtime.engine) as session:
        rules = runtime.policies.current().placement if runtime.policies is not None else ()
        return request_wakes(session, select_devices(session, **which, rules=rules), reason, actor, utcnow(),
                             WakeConfig.from_settings(runtime.settings))


def _wake_page(request: Request, runtime: RuntimeDep, principal, status_code: int = 200, **context) -> Response:
    with Session(runtime.engine) as session:
        rules = runtime.policies.current().placement if runtime.policies is not None else ()
        wakes, choices = list_wakes(session, limit=50), filter_choices(session, principal, rules)
    return page(request, "wake.html", principal, status_code=status_code, nav="wake", wakes=wakes,
                choices=choices, **context)


@router.get("/wake")
def wake_home(request: Request, runtime: RuntimeDep, principal: Manager) -> Response:
    return _wake_page(request, runtime, principal)


@router.post("/wake/device/{device_id}")
def wake_device(request: Request, runtime: RuntimeDep, principal: Manager, device_id: Id,
                reason: Reason, confirmed: Confirmed = "") -> Response:
    if confirmed != "yes":
        return confirm(request, principal, "Wake this device?", f"A magic packet goes to device {device_id} with its "
                       f"site's next wave; it switches on if it is off or asleep. Reason: {reason}.",
                       f"/wake/device/{device_id}", "Wake it", f"/devices/{device_id}", danger=False, reason=reason)
    try:
        result = _wave(runtime, principal.actor, reason, device=str(device_id))
    except WakeRefused as exc:
        return _wake_page(request, runtime, principal, status_code=404, error=str(exc))
    if result.skipped:
        return _wake_page(request, runtime, principal, status_code=409, error=result.skipped[0].why)
    return RedirectResponse(f"/devices/{device_id}?done=woken", status_code=303)


@router.post("/wake/room")
def wake_room(request: Request, runtime: RuntimeDep, principal: Manager, site: Annotated[str, Form(max_length=100)],
              room: Annotated[str, Form(min_length=1, max_length=100)], reason: Reason,
              confirmed: Confirmed = "") -> Response:
    if confirmed != "yes":
        return confirm(request, principal, f"Wake every device in {room}?", f"Every device in {room} at {site} is "
                       f"switched on, in paced waves. Reason: {reason}.", "/wake/room", f"Wake {room}", "/wake",
                       danger=False, site=site, room=room, reason=reason)
    try:
        result = _wave(runtime, principal.actor, reason, site=site, group=room)
    except WakeRefused as exc:
        return _wake_page(request, runtime, principal, status_code=404, error=str(exc))
    skipped = "; ".join(f"{s.hostname}: {s.why}" for s in result.skipped)
    message = f"{len(result.queued)} wake(s) queued in {room}" + (f"; skipped {skipped}" if skipped else "")
    return _wake_page(request, runtime, principal, message=message)
