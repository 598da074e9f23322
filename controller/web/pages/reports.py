"""Reports to download: forms that ask the reports API (/api/v1/reports/…) for a site's or trust's report."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session

from controller.api.deps import RuntimeDep
from controller.web.pages import Reader
from controller.web.render import page
from controller.web.views import visible_sites

router = APIRouter(include_in_schema=False)


@router.get("/reports")
def reports(request: Request, runtime: RuntimeDep, principal: Reader) -> Response:
    with Session(runtime.engine) as session:
        sites = visible_sites(session, principal)
    trusts = sorted({s.trust for s in sites if s.trust})
    return page(request, "reports.html", principal, nav="reports", sites=[s.name for s in sites], trusts=trusts)
