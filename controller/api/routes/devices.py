"""A device's room and tags (register/labels.py, register/placement.py).

    GET   /api/v1/devices/{device}/labels    the resolved room and tags with the source of each (every reader)
    PATCH /api/v1/devices/{device}/labels    {"room": "Hall", "clear_room": false, "tag": ["signage"],
                                              "untag": ["exam-room"]}: set by hand (network managers);
                                              404 unknown device, 409 ambiguous hostname, 422 bad room or tag
``device`` is an id or a hostname.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field
from sqlmodel import Session

from controller.api.auth import READERS, Principal, Role, require
from controller.api.deps import RuntimeDep
from controller.api.ids import DeviceRef
from controller.db import session_scope
from controller.register.devices import Ambiguous, NotFound, find_device
from controller.register.facts import labels
from controller.register.labels import MAX_ROOM, MAX_TAG, MAX_TAGS, LabelRefused, set_by_hand
from controller.register.models import Site
from controller.register.placement import Labels

router = APIRouter(prefix="/api/v1", tags=["devices"])


class SourcedOut(BaseModel):
    value: str
    source: str
    detail: str


class LabelsOut(BaseModel):
    device_id: int
    hostname: str
    room: SourcedOut | None
    tags: list[SourcedOut]
    untagged: list[str]


class LabelsIn(BaseModel):
    room: str | None = Field(default=None, max_length=MAX_ROOM)
    clear_room: bool = False
    tag: list[Annotated[str, Field(max_length=MAX_TAG)]] = Field(default_factory=list, max_length=MAX_TAGS)
    untag: list[Annotated[str, Field(max_length=MAX_TAG)]] = Field(default_factory=list, max_length=MAX_TAGS)
    model_config = {"extra": "forbid"}


def _out(device_id: int, hostname: str, found: Labels) -> LabelsOut:
    def one(s) -> SourcedOut:
        return SourcedOut(value=s.value, source=s.source.value, detail=s.detail)

    return LabelsOut(device_id=device_id, hostname=hostname, room=one(found.room) if found.room else None,
                     tags=[one(t) for t in found.tags], untagged=list(found.untagged))


def _rules(runtime) -> tuple:
    return runtime.policies.current().placement if runtime.policies is not None else ()


def _visible(session: Session, principal: Principal, reference: str):
    device = find_device(session, reference)
    if not principal.may_see(device.site_id):
        raise NotFound(f"no device with id, hostname, serial or asset tag {reference!r}")
    return device


@router.get("/devices/{device}/labels", response_model=LabelsOut)
async def get_labels(device: DeviceRef, runtime: RuntimeDep,
                     principal: Annotated[Principal, Depends(require(*READERS))]) -> LabelsOut:
    rules = await asyncio.to_thread(_rules, runtime)

    def work() -> LabelsOut:
        with Session(runtime.engine) as session:
            found = _visible(session, principal, device)
            return _out(found.id, found.hostname, labels(found, session.get(Site, found.site_id), rules))

    try:
        return await asyncio.to_thread(work)
    except NotFound as exc:
        raise HTTPException(409 if isinstance(exc, Ambiguous) else 404, str(exc)) from None


@router.patch("/devices/{device}/labels", response_model=LabelsOut)
async def set_labels(device: DeviceRef, body: LabelsIn, runtime: RuntimeDep,
                     principal: Annotated[Principal, Depends(require(Role.network_manager))]) -> LabelsOut:
    rules = await asyncio.to_thread(_rules, runtime)

    def work() -> LabelsOut:
        with session_scope(runtime.engine) as session:
            found = _visible(session, principal, device)
            set_by_hand(session, found, principal.actor, body.room, body.clear_room, body.tag, body.untag)
            return _out(found.id, found.hostname, labels(found, session.get(Site, found.site_id), rules))

    try:
        return await asyncio.to_thread(work)
    except NotFound as exc:
        raise HTTPException(409 if isinstance(exc, Ambiguous) else 404, str(exc)) from None
    except LabelRefused as exc:
        raise HTTPException(422, str(exc)) from None
