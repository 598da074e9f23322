"""Energy, cost and carbon over HTTP, for the console, reports and scripts (read-only roles).

    GET /api/v1/energy/summary?site=…&from=2025-09-01&to=2025-12-19&by=site|room|device|device_class|trust|estate
                              (or several joined by commas, with day|hour|method|state: by=site,method)
                              [&per_school_day=true]   also kWh per school day (the first site's term calendars)
    GET /api/v1/energy/savings?site=…&from=…&to=…
    GET /api/v1/energy/waste?site=…&from=…&to=…&by=device|room&limit=10
    GET /api/v1/energy/insomnia?site=…&from=…&to=…   that waste by what held the machines awake

Figures are exact decimals sent as strings. An unknown site, a bad date or grouping is 400; a site the
caller is not granted is 403 (auditors see only their sites; with no ``site`` they get those sites).
Worked out in FastAPI's thread pool (plain ``def``): a term of buckets takes a moment.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from controller.api.auth import READERS, Principal, require
from controller.api.deps import RuntimeDep
from controller.db import session_scope
from controller.energy.accounting import AccountingError, energy_summary, jsonable
from controller.energy.insomnia import insomnia
from controller.energy.period import Period, PeriodError, resolve
from controller.energy.savings import out_of_hours_waste, savings_summary
from controller.energy.school_hours import SchoolHours
from controller.reports.service import Inputs, ReportError, load_inputs

router = APIRouter(prefix="/api/v1/energy", tags=["energy"])
Reader = Annotated[Principal, Depends(require(*READERS))]
Sites = Annotated[list[str], Query(alias="site", description="A site name; repeat for several; none: all")]
From = Annotated[str, Query(alias="from", description="First day (2025-09-01) or an ISO time")]
To = Annotated[str, Query(alias="to", description="Last day, inclusive, or an ISO time")]


def _scope(session, principal: Principal, sites: list[str], start: str, end: str) -> Period:
    try:
        period = resolve(session, sites, start, end)
    except PeriodError as exc:
        raise HTTPException(400, str(exc)) from None
    if period.site_ids is None:
        if principal.site_ids is not None:
            return Period(period.start, period.end, sorted(principal.site_ids))
        return period
    for name, site_id in zip(sites, period.site_ids, strict=True):
        if not principal.may_see(site_id):
            raise HTTPException(403, f"you are not granted site {name!r}")
    return period


def _policy_inputs(runtime) -> Inputs:
    """The policies, calendars and placement rules in force; policy files that do not load are a 400 that says why."""
    try:
        return load_inputs(runtime.settings.resolved_policy_dir())
    except ReportError as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("/summary")
def summary(runtime: RuntimeDep, principal: Reader, start: From, end: To, site: Sites = [],  # noqa: B006
            by: str = "site", per_school_day: bool = False) -> dict:
    hours = None
    if per_school_day:
        inputs = _policy_inputs(runtime)
        hours = SchoolHours(calendars=tuple(inputs.site_calendars(site[0]) if site else ()))
    with session_scope(runtime.engine) as session:
        period = _scope(session, principal, site, start, end)
        try:
            return energy_summary(session, period.start, period.end, period.site_ids, by, hours=hours).to_json()
        except AccountingError as exc:
            raise HTTPException(400, str(exc)) from None


@router.get("/savings")
def savings(runtime: RuntimeDep, principal: Reader, start: From, end: To, site: Sites = []) -> dict:  # noqa: B006
    with session_scope(runtime.engine) as session:
        period = _scope(session, principal, site, start, end)
        return savings_summary(session, period.start, period.end, period.site_ids).to_json()


@router.get("/waste")
def waste(runtime: RuntimeDep, principal: Reader, start: From, end: To, site: Sites = [],  # noqa: B006
          by: str = "device", limit: Annotated[int, Query(ge=1, le=1000)] = 10) -> list:
    inputs = _policy_inputs(runtime)
    with session_scope(runtime.engine) as session:
        period = _scope(session, principal, site, start, end)
        try:
            rows = out_of_hours_waste(session, period.start, period.end, period.site_ids, by, limit,
                                      inputs.policies, inputs.calendars, placement=inputs.placement)
        except AccountingError as exc:
            raise HTTPException(400, str(exc)) from None
        return jsonable([vars(r) for r in rows])


@router.get("/insomnia")
def insomnia_by_cause(runtime: RuntimeDep, principal: Reader, start: From, end: To,
                      site: Sites = []) -> dict:  # noqa: B006
    inputs = _policy_inputs(runtime)
    with session_scope(runtime.engine) as session:
        period = _scope(session, principal, site, start, end)
        try:
            return insomnia(session, period.start, period.end, period.site_ids, inputs.policies,
                            inputs.calendars, placement=inputs.placement).to_json()
        except AccountingError as exc:
            raise HTTPException(400, str(exc)) from None
