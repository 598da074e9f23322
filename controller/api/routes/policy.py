"""The console's policy API: the active policies with their modes, a mode switch, and its projected impact."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlmodel import Session

from controller.api.auth import READERS, CurrentPrincipal, Role, require
from controller.api.deps import RuntimeDep
from controller.db import session_scope
from controller.policy.model import Mode
from controller.policy.replay import projected_impact
from controller.policy.simulate import Simulation
from controller.policy.store import PolicyLine, PolicyStore, UnknownPolicy
from controller.timeutil import utcnow

router = APIRouter(prefix="/api/v1/policies", tags=["policies"])


@dataclass(frozen=True)
class ModeSwitch:
    mode: Mode


@dataclass(frozen=True)
class Impact:
    policy: str
    mode: Mode
    now: Simulation  # the period replayed with the modes as they are
    after: Simulation  # and with the switch


def _store(runtime) -> PolicyStore:
    if runtime.policies is None:
        raise HTTPException(503, "the policy store is not running")
    return runtime.policies


@router.get("", response_model=list[PolicyLine], dependencies=[Depends(require(*READERS))])
async def list_policies(runtime: RuntimeDep) -> list[PolicyLine]:
    return await asyncio.to_thread(_store(runtime).list_policies)


@router.put("/{name}/mode", response_model=PolicyLine, dependencies=[Depends(require(Role.network_manager))])
async def set_mode(name: str, switch: ModeSwitch, runtime: RuntimeDep, principal: CurrentPrincipal) -> PolicyLine:
    store = _store(runtime)

    def work() -> PolicyLine:
        with session_scope(runtime.engine) as session:
            store.set_mode(session, name, switch.mode, principal.actor)
        return next(line for line in store.list_policies() if line.name == name)

    try:
        return await asyncio.to_thread(work)
    except UnknownPolicy as exc:
        raise HTTPException(404, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/{name}/impact", response_model=Impact, dependencies=[Depends(require(*READERS))])
async def impact(name: str, mode: Mode, runtime: RuntimeDep,
                 days: Annotated[int, Query(ge=1, le=31)] = 7) -> Impact:
    """The last ``days`` replayed as things are and with the switch: what it would have done and saved."""
    store = _store(runtime)

    def work() -> Impact:
        end = utcnow()
        with Session(runtime.engine) as session:
            now, after = projected_impact(session, store.current(), name, mode, end - timedelta(days=days), end)
        return Impact(name, mode, now, after)

    try:
        return await asyncio.to_thread(work)
    except UnknownPolicy as exc:
        raise HTTPException(404, str(exc)) from None

