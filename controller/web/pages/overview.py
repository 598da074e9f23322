"""The estate at a glance: devices by state, power now and energy this week, by site."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session

from controller.api.deps import RuntimeDep
from controller.reports.figures import Inputs
from controller.timeutil import utcnow
from controller.web.pages import Reader
from controller.web.render import page
from controller.web.views import overview

router = APIRouter(include_in_schema=False)


@router.get("/")
def estate_overview(request: Request, runtime: RuntimeDep, principal: Reader) -> Response:
    inputs = None
    if runtime.policies is not None:
        active = runtime.policies.current()
        inputs = Inputs(active.policies, active.calendars, active.placement)
    with Session(runtime.engine) as session:
        view = overview(session, principal, utcnow(), runtime.settings.report_interval_seconds, inputs)
    return page(request, "overview.html", principal, nav="overview", view=view)
