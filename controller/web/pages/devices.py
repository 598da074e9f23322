"""Devices: search and filter the register; one device's energy history, lifecycle and actions."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from controller.api.deps import RuntimeDep
from controller.api.ids import Id
from controller.db import session_scope
from controller.register.devices import NotFound, device_detail
from controller.register.facts import labels
from controller.register.labels import LabelRefused, set_by_hand
from controller.register.models import Device
from controller.timeutil import utcnow
from controller.web.chart import bar_chart
from controller.web.pages import Manager, Reader
from controller.web.render import page
from controller.web.views import (
    DeviceFilter,
    daily_energy,
    device_actions,
    device_changes,
    device_site,
    filter_choices,
    find_devices,
)
from controller.web.workflow import lifecycle_of

router = APIRouter(include_in_schema=False)
DONE = {"labelled": "Room and tags saved; the device's agent gets its new schedule with its next report.",
        "moved": "Lifecycle move recorded.", "woken": "Wake requested; the device shows as on once it reports."}


def _rules(runtime) -> tuple:
    return runtime.policies.current().placement if runtime.policies is not None else ()


TagList = Annotated[str, Form(max_length=2000)]


def _tags(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


@router.get("/devices")
def devices(request: Request, runtime: RuntimeDep, principal: Reader, q: str = "", site: str = "",
            device_class: str = "", state: str = "", room: str = "", tag: str = "", done: str = "",
            error: str = "") -> Response:
    wanted = DeviceFilter(q, site, device_class, state, room, tag)
    rules = _rules(runtime)
    with Session(runtime.engine) as session:
        items = find_devices(session, principal, wanted, utcnow(), runtime.settings.report_interval_seconds,
                             rules=rules)
        choices = filter_choices(session, principal, rules)
    return page(request, "devices.html", principal, nav="devices", items=items, wanted=wanted, choices=choices,
                message=done or None, error=error or None)


@router.post("/devices/labels")
def label_devices(request: Request, runtime: RuntimeDep, principal: Manager,
                  q: Annotated[str, Form(max_length=255)] = "", site: Annotated[str, Form(max_length=100)] = "",
                  device_class: Annotated[str, Form(max_length=32)] = "",
                  state: Annotated[str, Form(max_length=32)] = "", room: Annotated[str, Form(max_length=100)] = "",
                  tag: Annotated[str, Form(max_length=50)] = "", set_room: Annotated[str, Form(max_length=100)] = "",
                  add_tags: TagList = "", remove_tags: TagList = "") -> Response:
    """The bulk action: the same room and tags, by hand, for every device the filter lists."""
    wanted = DeviceFilter(q, site, device_class, state, room, tag)
    back = "/devices?" + urlencode({k: v for k, v in vars(wanted).items() if v})
    try:
        with session_scope(runtime.engine) as session:
            items = find_devices(session, principal, wanted, utcnow(), runtime.settings.report_interval_seconds,
                                 rules=_rules(runtime))
            changed = 0
            for item in items:
                changed += set_by_hand(session, session.get(Device, item.id), principal.actor, set_room or None,
                                       tag=_tags(add_tags), untag=_tags(remove_tags))
    except LabelRefused as exc:
        return RedirectResponse(f"{back}&{urlencode({'error': str(exc)})}", status_code=303)
    return RedirectResponse(f"{back}&{urlencode({'done': f'{changed} of {len(items)} device(s) updated.'})}",
                            status_code=303)


@router.get("/devices/{device_id}")
def device(request: Request, runtime: RuntimeDep, principal: Reader, device_id: Id, done: str = "",
           error: str = "") -> Response:
    with Session(runtime.engine) as session:
        try:
            detail = device_detail(session, device_id)
        except NotFound:
            raise HTTPException(status_code=404, detail=f"no device with id {device_id}") from None
        site = device_site(session, device_id)
        if not principal.may_see(site.id):
            raise HTTPException(status_code=404, detail=f"no device with id {device_id}")
        placed = labels(session.get(Device, device_id), site, _rules(runtime))
        bars = daily_energy(session, device_id, ZoneInfo(site.timezone), utcnow())
        lifecycle = lifecycle_of(session, device_id)
        changes = device_changes(session, device_id)
        actions = device_actions(session, device_id)
    chart = bar_chart(bars, "kWh", f"{detail.device.hostname}: energy per day, {bars[0].label} to {bars[-1].label}")
    return page(request, "device.html", principal, nav="devices", d=detail, chart=chart, bars=bars,
                lifecycle=lifecycle, changes=changes, actions=actions, placed=placed,
                message=DONE.get(done), error=error or None)


@router.post("/devices/{device_id}/labels")
def label_device(request: Request, runtime: RuntimeDep, principal: Manager, device_id: Id,
                 set_room: Annotated[str, Form(max_length=100)] = "",
                 clear_room: Annotated[str, Form(max_length=3)] = "", add_tags: TagList = "",
                 remove_tags: TagList = "") -> Response:
    try:
        with session_scope(runtime.engine) as session:
            found = session.get(Device, device_id)
            if found is None or not principal.may_see(found.site_id):
                raise HTTPException(status_code=404, detail=f"no device with id {device_id}")
            set_by_hand(session, found, principal.actor, set_room or None, clear_room == "yes", _tags(add_tags),
                        _tags(remove_tags))
    except LabelRefused as exc:
        return RedirectResponse(f"/devices/{device_id}?{urlencode({'error': str(exc)})}", status_code=303)
    return RedirectResponse(f"/devices/{device_id}?done=labelled", status_code=303)
