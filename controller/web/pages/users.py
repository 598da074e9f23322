"""Users and API tokens, for network managers only; the same functions as `caretaker user|apitoken`."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from controller.api.deps import RuntimeDep
from controller.api.ids import Id
from controller.db import session_scope
from controller.timeutil import utcnow
from controller.web.accounts import (
    AccountError,
    Role,
    add_user,
    create_token,
    disable_user,
    list_tokens,
    list_users,
    revoke_token,
)
from controller.web.pages import Manager
from controller.web.render import confirm, page
from controller.web.views import visible_sites

router = APIRouter(include_in_schema=False)
Confirmed = Annotated[str, Form(max_length=3)]
DONE = {"added": "User added.", "disabled": "User disabled; their sessions have ended.",
        "revoked": "API token revoked."}


def _users_page(request: Request, runtime: RuntimeDep, principal, status_code: int = 200, **context) -> Response:
    with Session(runtime.engine) as session:
        users, tokens = list_users(session), list_tokens(session)
        sites = [s.name for s in visible_sites(session, principal)]
    return page(request, "users.html", principal, status_code=status_code, nav="users", users=users,
                tokens=tokens, sites=sites, roles=list(Role), now=utcnow(), **context)


def _rooms(text: str) -> list[str]:
    """The form's rooms field: one room per line or separated by commas."""
    return [room.strip() for room in text.replace("\n", ",").split(",") if room.strip()]


@router.get("/users")
def users(request: Request, runtime: RuntimeDep, principal: Manager, done: str = "") -> Response:
    return _users_page(request, runtime, principal, message=DONE.get(done))


@router.post("/users")
def new_user(request: Request, runtime: RuntimeDep, principal: Manager, name: Annotated[str, Form(max_length=100)],
             role: Annotated[Role, Form()], password: Annotated[str, Form(max_length=1000)],
             sites: Annotated[list[str] | None, Form()] = None,
             rooms: Annotated[str, Form(max_length=2000)] = "") -> Response:
    try:
        with session_scope(runtime.engine) as session:
            add_user(session, name, role, password, sites or [], principal.actor, _rooms(rooms))
    except AccountError as exc:
        return _users_page(request, runtime, principal, status_code=400, error=str(exc))
    return RedirectResponse("/users?done=added", status_code=303)


@router.post("/users/{name}/disable")
def disable(request: Request, runtime: RuntimeDep, principal: Manager, name: str,
            confirmed: Confirmed = "") -> Response:
    if confirmed != "yes" and principal.actor != f"user:{name}":
        return confirm(request, principal, f"Disable {name}?", f"{name} will no longer be able to sign in, and any "
                       "session they have open ends now. Their history stays.", f"/users/{quote(name)}/disable",
                       f"Disable {name}", "/users")
    if principal.actor == f"user:{name}":
        return _users_page(request, runtime, principal, status_code=400,
                           error="You cannot disable yourself: ask another network manager, or use the CLI.")
    try:
        with session_scope(runtime.engine) as session:
            disable_user(session, name, principal.actor)
    except AccountError as exc:
        return _users_page(request, runtime, principal, status_code=404, error=str(exc))
    return RedirectResponse("/users?done=disabled", status_code=303)


@router.post("/apitokens")
def new_token(request: Request, runtime: RuntimeDep, principal: Manager, name: Annotated[str, Form(max_length=100)],
              role: Annotated[Role, Form()], days: Annotated[int | None, Form(ge=1, le=3650)] = None,
              sites: Annotated[list[str] | None, Form()] = None,
              rooms: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """The new token is shown on this response only: it is never stored, so it cannot be shown again."""
    expires_at = utcnow() + timedelta(days=days) if days else None
    try:
        with session_scope(runtime.engine) as session:
            secret, token = create_token(session, name, role, sites or [], expires_at, principal.actor, _rooms(rooms))
    except AccountError as exc:
        return _users_page(request, runtime, principal, status_code=400, error=str(exc))
    return _users_page(request, runtime, principal, new_token=secret, new_token_name=token.name)


@router.post("/apitokens/{token_id}/revoke")
def revoke(request: Request, runtime: RuntimeDep, principal: Manager, token_id: Id,
           confirmed: Confirmed = "") -> Response:
    if confirmed != "yes":
        return confirm(request, principal, "Revoke this API token?", "Scripts using it will be refused from now on; "
                       "a revoked token cannot be brought back (create a new one).", f"/apitokens/{token_id}/revoke",
                       "Revoke the token", "/users")
    try:
        with session_scope(runtime.engine) as session:
            revoke_token(session, token_id, principal.actor)
    except AccountError as exc:
        return _users_page(request, runtime, principal, status_code=404, error=str(exc))
    return RedirectResponse("/users?done=revoked", status_code=303)
