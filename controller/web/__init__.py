"""The web console: people sign in here, with roles; pages are rendered on the server."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from controller.api.auth import NotSignedIn, not_signed_in_response
from controller.web import errors
from controller.web.pages import (
    conflicts,
    devices,
    insomnia,
    lifecycle,
    overview,
    policies,
    reports,
    signin,
    sites,
    staff,
    users,
    wake,
)
from controller.web.security import SecurityHeaders

ROUTERS = (signin.router, overview.router, devices.router, policies.router, wake.router, lifecycle.router,
           reports.router, users.router, conflicts.router, staff.router, insomnia.router, sites.router)


def install(app: FastAPI) -> None:
    """Add the console to the app: its pages, stylesheet, security headers and sign-in redirects."""
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(NotSignedIn, not_signed_in_response)
    app.add_exception_handler(HTTPException, errors.http_error)
    app.add_exception_handler(RequestValidationError, errors.validation_error)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    for router in ROUTERS:
        app.include_router(router)
