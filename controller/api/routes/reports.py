"""Report downloads for the console and for scripts: read-only roles, auditors only for their granted sites.

    GET /api/v1/reports/bursar?site=…|trust=…&period=2025-26&format=html|pdf|csv
    GET /api/v1/reports/audit?trust=…&period=2025-26&format=html|pdf|csv|json

An unknown site or trust is 404, a malformed period or format 400, a site not granted 403. Reports are
worked out in FastAPI's thread pool (plain ``def``): a year's buckets take seconds, not microseconds.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response

from controller.api.auth import READERS, Principal, require
from controller.api.deps import RuntimeDep
from controller.db import session_scope
from controller.reports import service
from controller.timeutil import utcnow

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
Reader = Annotated[Principal, Depends(require(*READERS))]
PeriodQuery = Annotated[str, Query(description="FY2025-26, 2025-26, autumn-2025 or 2025-09-01..2025-12-31")]


def _download(runtime, principal: Principal, kind: str, fmt: str, period: str, site: str | None,
              trust: str | None) -> Response:
    try:
        inputs = service.load_inputs(runtime.settings.resolved_policy_dir())
        with session_scope(runtime.engine) as session:
            rendered = service.make(session, kind, fmt, inputs, period, utcnow(), site=site, trust=trust,
                                    may_see=principal.may_see)
    except service.UnknownScope as exc:
        raise HTTPException(404, str(exc)) from None
    except service.NotAllowed as exc:
        raise HTTPException(403, str(exc)) from None
    except service.ReportError as exc:
        raise HTTPException(400, str(exc)) from None
    return Response(rendered.content, media_type=rendered.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{rendered.filename}"'})


@router.get("/bursar", response_class=Response)
def bursar_report(runtime: RuntimeDep, principal: Reader, period: PeriodQuery, site: str | None = None,
                  trust: str | None = None, format: str = "html") -> Response:
    return _download(runtime, principal, "bursar", format, period, site, trust)


@router.get("/audit", response_class=Response)
def audit_pack(runtime: RuntimeDep, principal: Reader, period: PeriodQuery, trust: str,
               format: str = "html") -> Response:
    return _download(runtime, principal, "audit", format, period, None, trust)
