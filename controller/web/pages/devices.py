"""Devices: search and filter the register; one device's energy history, lifecycle and actions."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from sqlmodel import Session

from controller.api.deps import RuntimeDep
from controller.api.ids import Id
from controller.register.devices import NotFound, device_detail
from controller.timeutil import utcnow
from controller.web.chart import bar_chart
from controller.web.pages import Reader
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
DONE = {"moved": "Lifecycle move recorded.", "woken": "Wake requested; the device shows as on once it reports."}


@router.get("/devices")
def devices(request: Request, runtime: RuntimeDep, principal: Reader, q: str = "", site: str = "",
            device_class: str = "", state: str = "", room: str = "") -> Response:
    wanted = DeviceFilter(q, site, device_class, state, room)
    with Session(runtime.engine) as session:
        items = find_devices(session, principal, wanted, utcnow(), runtime.settings.report_interval_seconds)
        choices = filter_choices(session, principal)
    return page(request, "devices.html", principal, nav="devices", items=items, wanted=wanted, choices=choices)


@router.get("/devices/{device_id}")
def device(request: Request, runtime: RuntimeDep, principal: Reader, device_id: Id, done: str = "") -> Response:
    with Session(runtime.engine) as session:
        try:
            detail = device_detail(session, device_id)
        except NotFound:
            raise HTTPException(status_code=404, detail=f"no device with id {device_id}") from None
        site = device_site(session, device_id)
        if not principal.may_see(site.id):
            raise HTTPException(status_code=404, detail=f"no device with id {device_id}")
        bars = daily_energy(session, device_id, ZoneInfo(site.timezone), utcnow())
        lifecycle = lifecycle_of(session, device_id)
        changes = device_changes(session, device_id)
        actions = device_actions(session, device_id)
    chart = bar_chart(bars, "kWh", f"{detail.device.hostname}: energy per day, {bars[0].label} to {bars[-1].label}")
    return page(request, "device.html", principal, nav="devices", d=detail, chart=chart, bars=bars,
                lifecycle=lifecycle, changes=changes, actions=actions, message=DONE.get(done))

