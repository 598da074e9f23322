"""The asset register as CSV over HTTP.

    GET  /api/v1/assets/export?site=        text/csv, as `caretaker assets export` writes it (every reader;
                                            auditors get their granted sites only)
    POST /api/v1/assets/import?site=        a register CSV, or a Google Admin / Intune export (with site=);
                                            network managers only; a bad row refuses the file (400)
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from controller.api.auth import READERS, Principal, Role, require
from controller.api.deps import RuntimeDep
from controller.db import session_scope
from controller.lifecycle import mdm, registercsv
from controller.lifecycle.states import Refused

router = APIRouter(prefix="/api/v1/assets", tags=["assets"])


class ImportOut(BaseModel):
    created: int
    updated: int
    unchanged: int
    moved: int
    skipped: int


@router.get("/export", response_class=Response)
def export_assets(runtime: RuntimeDep, principal: Annotated[Principal, Depends(require(*READERS))],
                  site: str | None = None) -> Response:
    with session_scope(runtime.engine) as session:
        text = registercsv.export_csv(session, site, principal.may_see)
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="assets.csv"'})


@router.post("/import", response_model=ImportOut)
async def import_assets(request: Request, runtime: RuntimeDep,
                        principal: Annotated[Principal, Depends(require(Role.network_manager))],
                        site: str | None = None) -> ImportOut:
    try:
        text = (await request.body()).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HTTPException(400, "the CSV must be UTF-8") from None
    return await run_in_threadpool(_import, runtime, principal.actor, text, site)


def _import(runtime, actor: str, text: str, site: str | None) -> ImportOut:
    headers = next(csv.reader(io.StringIO(text)), [])
    skipped = 0
    try:
        if (kind := mdm.detect(headers)) is not None:
            if site is None:
                raise Refused("an MDM export needs ?site= for its devices")
            rows, skipped = mdm.parse_mdm(text, site)
            source = f"{kind} import"
        else:
            rows, source = registercsv.parse_register(text), "CSV import"
        with session_scope(runtime.engine) as session:
            result = registercsv.import_rows(session, rows, actor, f"{source} over the API")
    except Refused as exc:
        raise HTTPException(400, str(exc)) from None
    return ImportOut(**asdict(result), skipped=skipped)
