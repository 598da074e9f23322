"""Who is asking, and may they: a signed-in browser session or an API token, each with one role.

Every route says which roles may call it with ``dependencies=[Depends(require(Role.network_manager))]``
(state-changing) or ``require(Role.network_manager, Role.bursar, Role.auditor)`` (read-only); routes that
filter by site take ``CurrentPrincipal`` and ask ``principal.may_see(site_id)``. A route without
``require`` must be on ``PUBLIC_PATHS``: the route-by-role test enumerates the app's routes and fails on
any other.

Browser sessions ride on a cookie, so every non-GET request made with one must carry the session's CSRF
token (form field ``csrf_token`` or header ``X-CSRF-Token``). API tokens (``Authorization: Bearer ct_…``)
are exempt: a cross-site page cannot set that header.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlmodel import Session

from controller.api.deps import Runtime, get_runtime
from controller.timeutil import utcnow
from controller.web.accounts import Principal, Role, SessionPolicy, session_principal, token_principal

__all__ = ["PUBLIC_PATHS", "READERS", "CurrentPrincipal", "NotSignedIn", "Principal", "Role", "require"]

SESSION_COOKIE = "caretaker_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Public by design: liveness and readiness, the agents' own authenticated API (agent secrets, not people), the agent
# download index, /metrics (its own optional token), the sign-in page, the console's stylesheet and
# the OpenAPI contract. (/docs and /redoc exist only when the api_docs setting turns them on.)
PUBLIC_PATHS = frozenset({
    "/healthz", "/readyz", "/api/v1/agent/enroll", "/api/v1/agent/reports",
    "/api/v1/downloads/agent/simple/", "/api/v1/downloads/agent/simple/{project}/",
    "/api/v1/downloads/agent/files/{filename}", "/metrics",
    "/signin", "/static", "/openapi.json",
})


class NotSignedIn(HTTPException):
    """No valid session or token: API callers get 401, browsers are sent to the sign-in page."""

    def __init__(self) -> None:
        super().__init__(status_code=401, detail="sign in or send an API token",
                         headers={"WWW-Authenticate": "Bearer"})


def wants_page(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "authorization" not in request.headers


async def not_signed_in_response(request: Request, exc: Exception) -> Response:
    """A page asks the browser to sign in, then to come back (to the page; after a form, to the start)."""
    if wants_page(request):
        back = request.url.path if request.method in SAFE_METHODS else "/"
        return RedirectResponse(f"/signin?next={back}", status_code=303)
    assert isinstance(exc, NotSignedIn)
    return JSONResponse({"detail": exc.detail}, status_code=401, headers=exc.headers)


def _lookup(runtime: Runtime, bearer: str | None, cookie: str | None) -> Principal | None:
    now = utcnow()
    with Session(runtime.engine) as session:
        if bearer is not None:
            principal = token_principal(session, bearer, now)
        else:
            policy = SessionPolicy.from_settings(runtime.settings)
            principal = session_principal(session, cookie, policy, now) if cookie else None
        session.commit()
    return principal


async def authenticate(request: Request) -> Principal | None:
    """The caller's principal (once per request), CSRF-checked when it came from a session cookie."""
    if hasattr(request.state, "principal"):
        return request.state.principal
    header = request.headers.get("authorization", "")
    bearer = header[7:].strip() if header[:7].lower() == "bearer " else None
    cookie = request.cookies.get(SESSION_COOKIE)
    principal = None
    if bearer is not None or cookie:
        principal = await asyncio.to_thread(_lookup, await get_runtime(request), bearer, cookie)
    if principal is not None and principal.csrf_token is not None and request.method not in SAFE_METHODS:
        await _check_csrf(request, principal.csrf_token)
    request.state.principal = principal
    return principal


async def _check_csrf(request: Request, expected: str) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not secrets.compare_digest(sent, expected):
        raise HTTPException(status_code=403, detail="the form's CSRF token is missing or wrong; reload the page")


def require(*roles: Role) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A dependency that lets through only the given roles (401 anonymous, 403 another role)."""
    allowed = frozenset(roles)

    async def dependency(request: Request) -> Principal:
        principal = await authenticate(request)
        if principal is None:
            raise NotSignedIn()
        if principal.role not in allowed:
            raise HTTPException(status_code=403, detail=f"the {principal.role} role may not do this")
        return principal

    dependency.roles = allowed  # type: ignore[attr-defined]  # read by the route-by-role test
    return dependency


async def current_principal(request: Request) -> Principal:
    principal = await authenticate(request)
    if principal is None:
        raise NotSignedIn()
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
READERS = (Role.network_manager, Role.bursar, Role.auditor)
