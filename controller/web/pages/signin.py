"""Signing in and out. A failed sign-in says the same thing, at the same speed, whether or not the name
exists; it is logged with the address it came from and counted (``caretaker_signin_refused_total``).
Guessing is slowed per source address and overall, never by locking the named account (web/throttle.py).
"""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from controller.api.auth import SESSION_COOKIE, authenticate
from controller.api.deps import RuntimeDep
from controller.db import session_scope
from controller.timeutil import utcnow
from controller.web.accounts import Role, SessionPolicy, close_session, open_session, sign_in
from controller.web.pages import SignedIn
from controller.web.render import page
from controller.web.throttle import Busy

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)
WRONG = "That name and password do not match an account that may sign in."


def _safe_next(target: str) -> str:
    """Only a path on this site: an open redirect would let a phishing link borrow our sign-in page."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


def _same_origin(request: Request) -> bool:
    """Refuses a sign-in posted by another site's page (login CSRF: signing the victim into the attacker's
    account). There is no session yet, hence no CSRF token; browsers send Origin on every cross-site POST."""
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


@router.get("/signin")
async def signin_form(request: Request, next: str = "/") -> Response:
    if await authenticate(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return page(request, "signin.html", None, next=_safe_next(next), name="")


@router.post("/signin")
async def signin(request: Request, runtime: RuntimeDep, name: Annotated[str, Form(max_length=100)],
                 password: Annotated[str, Form(max_length=1000)], next: Annotated[str, Form()] = "/") -> Response:
    if not _same_origin(request):
        raise HTTPException(status_code=403, detail="sign in from the console's own sign-in page")
    source = request.client.host if request.client else "unknown"
    throttle, refused = runtime.signin, runtime.metrics.signin_refused
    wait = throttle.wait(source)
    if wait > 0:
        refused.labels("throttled").inc()
        log.warning("sign-in from %s refused: too many failed sign-ins, %.0f s to wait", source, wait)
        return page(request, "signin.html", None, status_code=429, error=_wait_message(wait), next=_safe_next(next),
                    name=name, headers={"Retry-After": str(math.ceil(wait))})

    def check() -> tuple[str, str] | None:
        with session_scope(runtime.engine) as session:
            user = sign_in(session, name.strip(), password, source)
            policy = SessionPolicy.from_settings(runtime.settings)
            return (open_session(session, user, policy, utcnow())[0], user.role) if user else None

    try:
        async with throttle.hashing():
            signed = await asyncio.to_thread(check)
    except Busy:
        refused.labels("busy").inc()
        log.warning("sign-in from %s refused: too many sign-ins being checked at once", source)
        return page(request, "signin.html", None, status_code=429, error=_wait_message(1), next=_safe_next(next),
                    name=name, headers={"Retry-After": "1"})
    if signed is None:
        throttle.failed(source)
        refused.labels("wrong").inc()
        log.warning("sign-in from %s refused: wrong name or password", source)
        return page(request, "signin.html", None, status_code=401, error=WRONG, next=_safe_next(next), name=name)
    throttle.succeeded(source)
    secret, role = signed
    # Staff have one page: the start page (every other page) is not theirs.
    target = "/staff" if role == Role.staff and _safe_next(next) == "/" else _safe_next(next)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, secret, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https",
                        max_age=int(timedelta(hours=runtime.settings.session_absolute_hours).total_seconds()))
    return response


def _wait_message(seconds: float) -> str:
    return f"Too many sign-in attempts. Try again in {math.ceil(seconds)} s."


@router.post("/signout")
def signout(request: Request, runtime: RuntimeDep, principal: SignedIn) -> Response:
    with Session(runtime.engine) as session:
        close_session(session, request.cookies.get(SESSION_COOKIE, ""), principal.actor)
        session.commit()
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
    return response
