"""Sites over HTTP: what each school says about itself (trust, pupils, postcode, nation, time zone).

    GET   /api/v1/sites                 every site the caller may see
    GET   /api/v1/sites/{name}          one site, with its change history
    PATCH /api/v1/sites/{name}          {"trust"?, "pupils"?, "postcode"?, "nation"?, "timezone"?, "name"?}:
                                        network managers only; null clears an optional field, "name" renames

A field the rules refuse is 422 with the reason, a rename to a name in use 409, an unknown site 404; nothing
is written unless every field is accepted. The same function as `caretaker site set` does the work.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from sqlmodel import Session

from controller.api.auth import READERS, Principal, Role, require
from controller.api.deps import RuntimeDep
from controller.db import session_scope
from controller.register import sites

router = APIRouter(prefix="/api/v1/sites", tags=["sites"])
Reader = Annotated[Principal, Depends(require(*READERS))]
Manager = Annotated[Principal, Depends(require(Role.network_manager))]


class SiteChangeOut(BaseModel):
    at: datetime
    actor: str
    action: str
    before: dict | None
    after: dict | None


class SiteOut(BaseModel):
    id: int
    name: str
    trust: str | None
    pupils: int | None
    postcode: str | None
    outcode: str | None = Field(description="the region its carbon intensity comes from")
    nation: str | None
    timezone: str
    devices: int
    history: list[SiteChangeOut] = []


class SiteIn(BaseModel):
    """Only the fields sent are changed."""

    model_config = ConfigDict(extra="forbid")
    name: StrictStr | None = Field(None, max_length=100, description="a new name (the site keeps its history)")
    trust: StrictStr | None = Field(None, max_length=100)
    pupils: StrictInt | None = Field(None, ge=0, le=sites.MAX_PUPILS)
    postcode: StrictStr | None = Field(None, max_length=10)
    nation: StrictStr | None = Field(None, max_length=20, description="england, wales, scotland or northern-ireland")
    timezone: StrictStr | None = Field(None, max_length=64, description="IANA time zone, e.g. Europe/London")


def _out(view: sites.SiteView) -> SiteOut:
    return SiteOut(**{**vars(view), "history": [vars(c) for c in view.history]})


def _refused(exc: Exception) -> HTTPException:
    if isinstance(exc, sites.SiteNotFound):
        return HTTPException(404, str(exc))
    return HTTPException(409 if isinstance(exc, sites.SiteNameTaken) else 422, str(exc))


def _visible(session: Session, principal: Principal, name: str) -> sites.SiteView:
    view = sites.site_detail(session, name)
    if not principal.may_see(view.id):
        raise sites.SiteNotFound(f"no site called {name!r}")  # an auditor learns nothing of sites not granted
    return view


@router.get("", response_model=list[SiteOut])
def list_sites(runtime: RuntimeDep, principal: Reader) -> list[SiteOut]:
    with Session(runtime.engine) as session:
        return [_out(v) for v in sites.list_sites(session) if principal.may_see(v.id)]


@router.get("/{name}", response_model=SiteOut)
def show_site(name: str, runtime: RuntimeDep, principal: Reader) -> SiteOut:
    try:
        with Session(runtime.engine) as session:
            return _out(_visible(session, principal, name))
    except (sites.SiteError, sites.SiteNotFound) as exc:
        raise _refused(exc) from None


@router.patch("/{name}", response_model=SiteOut)
def set_site(name: str, body: SiteIn, runtime: RuntimeDep, principal: Manager) -> SiteOut:
    wanted = {field: getattr(body, field) for field in body.model_fields_set}
    if "name" in wanted and wanted["name"] is None:
        raise HTTPException(422, "name: a site's name cannot be null")
    try:
        with session_scope(runtime.engine) as session:
            return _out(sites.update_site(session, name, wanted, principal.actor))
    except (sites.SiteError, sites.SiteNotFound) as exc:
        raise _refused(exc) from None
