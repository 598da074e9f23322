"""Pages are Jinja2 templates rendered with the principal (for the menu and forms' CSRF token)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from controller.web.accounts import Principal, Role

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals["Role"] = Role


def page(request: Request, template: str, principal: Principal | None, status_code: int = 200,
         headers: dict[str, str] | None = None, **context: Any) -> Response:
    return templates.TemplateResponse(request, template, {"principal": principal, **context},
                                      status_code=status_code, headers=headers)
