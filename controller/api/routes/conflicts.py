"""Conflicts a network manager resolves (register/conflicts.py).

    GET  /api/v1/conflicts?site=                    devices kept apart and shared credentials (every reader)
    POST /api/v1/devices/{device_id}/conflict       {"resolution": "keep-apart" | "refuse" | "accept" | "retire"}
                                                    network managers; 404 unknown device, 409 wrong resolution
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel
from sqlmodel import Session

from controller.api.auth import READERS, Principal, Role, require
from controller.api.deps import RuntimeDep
from controller.api.ids import Id
from controller.db import session_scope
from controller.register.conflicts import ConflictError, ConflictLine, Resolution, list_conflicts, resolve
from controller.register.devices import NotFound
from controller.timeutil import utcnow

router = APIRouter(prefix="/api/v1", tags=["conflicts"])


class ConflictOut(BaseModel):
    id: int
    site: str
    hostname: str
    serial: str | None
    kind: str
    conflict_with: int | None
    conflict_reason: str
    agent_id: str | None
    since: datetime | None


class ResolutionIn(BaseModel):
    resolution: Resolution


class ResolutionOut(BaseModel):
    device_id: int
    resolution: Resolution
    outcome: str


@router.get("/conflicts", response_model=list[ConflictOut])
async def conflicts(runtime: RuntimeDep, principal: Annotated[Principal, Depends(require(*READERS))],
                    site: Annotated[str | None, Query(max_length=100)] = None) -> list[ConflictLine]:
    def work() -> list[ConflictLine]:
        with Session(runtime.engine) as session:
            lines = list_conflicts(session, site)
        return [line for line in lines if principal.site_ids is None or line.site_id in principal.site_ids]

    return await asyncio.to_thread(work)


@router.post("/devices/{device_id}/conflict", response_model=ResolutionOut)
async def resolve_conflict(device_id: Annotated[Id, "device id"], body: ResolutionIn, runtime: RuntimeDep,
                           principal: Annotated[Principal, Depends(require(Role.network_manager))]) -> ResolutionOut:
    def work() -> str:
        with session_scope(runtime.engine) as session:
            return resolve(session, device_id, body.resolution, principal.actor, utcnow())

    try:
        outcome = await asyncio.to_thread(work)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except ConflictError as exc:
        raise HTTPException(409, str(exc)) from None
    runtime.agents.forget_device(device_id)
    return ResolutionOut(device_id=device_id, resolution=body.resolution, outcome=outcome)
