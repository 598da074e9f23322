"""Sites: what each school says about itself. Everyone reads the sites they may see; network managers
change them with the same function as `caretaker site set`, and a refusal comes back on the form, in words."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from controller.api.deps import RuntimeDep
from controller.db import session_scope
from controller.policy.calendar import Nation
from controller.register import sites
from controller.web.errors import error_page, sentence
from controller.web.pages import Manager, Reader
from controller.web.render import page

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form(max_length=200)]
NATIONS = [(n.value, n.replace("_", " ").title()) for n in Nation]


@router.get("/sites")
def site_list(request: Request, runtime: RuntimeDep, principal: Reader) -> Response:
    with Session(runtime.engine) as session:
        rows = [v for v in sites.list_sites(session) if principal.may_see(v.id)]
    return page(request, "sites.html", principal, nav="sites", sites=rows)


def _site_page(request: Request, runtime: RuntimeDep, principal, name: str, status_code: int = 200,
               form: dict[str, str] | None = None, **context) -> Response:
    with Session(runtime.engine) as session:
        try:
            view = sites.site_detail(session, name)
        except (sites.SiteNotFound, sites.SiteError):
            view = None
    if view is None or not principal.may_see(view.id):
        return error_page(request, 404, f"there is no site called {name!r}")
    shown = form or {"name": view.name, "trust": view.trust or "", "pupils": "" if view.pupils is None
                     else str(view.pupils), "postcode": view.postcode or "", "nation": view.nation or "",
                     "timezone": view.timezone}
    return page(request, "site.html", principal, status_code=status_code, nav="sites", site=view, form=shown,
                nations=NATIONS, **context)


@router.get("/sites/{name}")
def site_show(request: Request, runtime: RuntimeDep, principal: Reader, name: str, done: str = "") -> Response:
    return _site_page(request, runtime, principal, name, message="Site saved." if done else None)


@router.post("/sites/{name}")
def site_save(request: Request, runtime: RuntimeDep, principal: Manager, name: str, new_name: Text = "",
              trust: Text = "", pupils: Text = "", postcode: Text = "", nation: Text = "",
              timezone: Text = "") -> Response:
    form = {"name": new_name, "trust": trust, "pupils": pupils, "postcode": postcode, "nation": nation,
            "timezone": timezone}
    wanted = {**form, "name": new_name or name, "pupils": pupils.strip() or None}
    try:
        with session_scope(runtime.engine) as session:
            view = sites.update_site(session, name, wanted, principal.actor)
    except sites.SiteNotFound:
        return _site_page(request, runtime, principal, name)
    except sites.SiteError as exc:
        return _site_page(request, runtime, principal, name, 400, form, error=sentence(str(exc)))
    return RedirectResponse(f"/sites/{quote(view.name, safe='')}?done=saved", status_code=303)
