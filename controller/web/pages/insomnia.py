"""Machines that would not sleep: the week's out-of-hours idle waste by what held the machines awake."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session

from controller.api.deps import RuntimeDep
from controller.energy.insomnia import insomnia
from controller.timeutil import hour_floor, utcnow
from controller.web.pages import Reader
from controller.web.render import page
from controller.web.views import visible_sites

router = APIRouter(include_in_schema=False)
DAYS = 7


@router.get("/insomnia")
def insomnia_page(request: Request, runtime: RuntimeDep, principal: Reader, site: str = "") -> Response:
    policies, calendars = ((), {})
    if runtime.policies is not None:
        active = runtime.policies.current()
        policies, calendars = active.policies, active.calendars
    now = utcnow()
    with Session(runtime.engine) as session:
        sites = visible_sites(session, principal)
        chosen = [s.id for s in sites if not site or s.name == site]
        found = insomnia(session, hour_floor(now) - timedelta(days=DAYS), now, chosen, policies, calendars, now) \
            if chosen else None
    return page(request, "insomnia.html", principal, nav="insomnia", found=found, sites=sites, site=site,
                days=DAYS)
