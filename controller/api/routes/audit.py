"""GET /api/v1/audit: the power audit log (actions with their reasons, and the changes beside them)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlmodel import Session

from controller.api.auth import READERS, CurrentPrincipal, require
from controller.api.deps import RuntimeDep
from controller.api.ids import Id
from controller.policy.audit import AuditLine, UnknownFilter, audit_log

router = APIRouter(prefix="/api/v1", tags=["audit"])


@router.get("/audit", response_model=list[AuditLine], dependencies=[Depends(require(*READERS))])
async def get_audit(runtime: RuntimeDep, principal: CurrentPrincipal,
                    since: Annotated[datetime, Query(description="ISO 8601 with an offset")],
                    until: Annotated[datetime | None, Query()] = None,
                    device: Annotated[Id | None, Query()] = None,
                    site: Annotated[str | None, Query()] = None,
                    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> list[AuditLine]:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(422, f"{name} must carry a UTC offset, e.g. 2026-02-16T18:00:00+00:00")

    def work() -> list[AuditLine]:
        with Session(runtime.engine) as session:
            return audit_log(session, since, until, device, site, principal.site_ids, limit)

    try:
        return await asyncio.to_thread(work)
    except UnknownFilter as exc:
        raise HTTPException(404, str(exc)) from None
