"""Errors on the console's pages as pages: the message in words and a way back, never the API's JSON.

API paths (and scripts sending a token) keep FastAPI's JSON answers; everything a browser asks for gets
``error.html`` with the same status code. A principal is shown the menu when the request had one.
"""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from controller.api.auth import wants_page
from controller.api.errors import invalid_request
from controller.web.render import page

TITLES = {400: "That request could not be understood", 403: "You may not do this", 404: "Not found",
          405: "That cannot be done here", 409: "That cannot be done now", 413: "That is too large",
          422: "Something in the form needs fixing"}


def back_link(request: Request) -> str:
    """Where "go back" leads: the page the person came from on this console, else the overview."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc == request.url.netloc and referer.path.startswith("/") and referer.path != request.url.path:
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return "/"


def sentence(message: str) -> str:
    """``message`` as a sentence: a capital first letter (the rest as written: names keep theirs), a full stop."""
    message = message.strip()
    if not message:
        return message
    return message[0].upper() + message[1:] + ("" if message.endswith((".", "?", "!")) else ".")


def error_page(request: Request, status: int, message: str) -> Response:
    title = TITLES.get(status, HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error")
    return page(request, "error.html", getattr(request.state, "principal", None), status_code=status,
                title=title, message=sentence(message), back=back_link(request))


MACHINE_PATHS = ("/metrics", "/healthz", "/readyz", "/openapi.json", "/docs", "/redoc")


def for_a_person(request: Request) -> bool:
    """A console page, asked for by a browser: not the API, a script with a token, or a scraper."""
    return wants_page(request) and not request.url.path.startswith(MACHINE_PATHS)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if not for_a_person(request) or exc.status_code < 400:
        return await http_exception_handler(request, exc)
    response = error_page(request, exc.status_code, str(exc.detail))
    response.headers.update(exc.headers or {})
    return response


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not for_a_person(request):
        return await invalid_request(request, exc)  # the API's one-line Problem, as its contract says
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
    return error_page(request, 422, problems or "the form was not filled in as expected")
