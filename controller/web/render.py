"""Pages are Jinja2 templates rendered with the principal (for the menu and forms' CSRF token)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from controller import formatting as fmt
from controller.web.accounts import Principal, Role

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals["Role"] = Role
# Figures as every surface writes them (controller/formatting.py): kWh and kgCO2e to 1 dp, £ to the penny.
templates.env.filters["kwh"] = fmt.kwh_text
templates.env.filters["kg"] = fmt.kg_text
templates.env.filters["money"] = fmt.money_text


def page(request: Request, template: str, principal: Principal | None, status_code: int = 200,
         headers: dict[str, str] | None = None, **context: Any) -> Response:
    return templates.TemplateResponse(request, template, {"principal": principal, **context},
                                      status_code=status_code, headers=headers)


def confirm(request: Request, principal: Principal, title: str, question: str, action: str, yes: str,
            cancel: str, danger: bool = True, **fields: str) -> Response:
    """A step before an action that one press must not take: what will happen, a button that does it (posting
    ``fields`` again with ``confirmed=yes``), and a way out."""
    return page(request, "confirm.html", principal, title=title, question=question, action=action, yes=yes,
                cancel=cancel, danger=danger, fields=fields)
