"""One shape for every refusal, and a 503 with Retry-After while the database cannot answer.

Every error the API sends is ``{"detail": "<one line a person can act on>"}`` (a report batch's 422 adds
``rejected``), including FastAPI's own validation errors, which would otherwise be a list of objects: one
:class:`Problem` model documents them all in the OpenAPI contract (see :data:`COMMON`).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from controller.db import UNAVAILABLE
from controller.register.ingest import StoreUnavailable

log = logging.getLogger(__name__)
_MAX_ERRORS = 5


class Problem(BaseModel):
    detail: str
    rejected: list[int] | None = None  # a report batch refused whole: the reports that can never be accepted


# Inline, not a model: FastAPI would file a model's schema under the route's own media type (text/html for
# the download index), while every error is JSON whatever the route serves.
_PROBLEM_JSON = {"application/json": {"schema": Problem.model_json_schema()}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": _PROBLEM_JSON}


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again",
                                "schema": {"type": "integer"}}}
# Declared on every route (see app.py): what any request can be answered besides its own successes.
COMMON: dict[int | str, dict[str, Any]] = {
    400: _problem("the request cannot be read or carried out as given (the detail says why)"),
    413: _problem("the request body is larger than the controller accepts"),
    422: _problem("the request is malformed: a bad field, a control character, a number out of range"),
    503: {**_problem("the database cannot answer just now; try again after Retry-After seconds"),
          "headers": _RETRY_AFTER},
}
SIGNED_IN: dict[int | str, dict[str, Any]] = {
    401: _problem("no valid session or API token"),
    403: _problem("the caller's role may not do this, or a form's CSRF token is missing"),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _problem("no such object")}
REFUSED: dict[int | str, dict[str, Any]] = {409: _problem("the rules refuse this change; the detail says why")}
LIMITED: dict[int | str, dict[str, Any]] = {
    429: {**_problem("too many requests; try again after Retry-After seconds"), "headers": _RETRY_AFTER}}


def validation_detail(exc: RequestValidationError) -> str:
    errors = exc.errors()
    problems = []
    for error in errors[:_MAX_ERRORS]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
        problems.append(f"{where}: {str(error.get('msg', 'invalid')).removeprefix('Value error, ')}")
    more = len(errors) - _MAX_ERRORS
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


async def invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": validation_detail(exc)}, status_code=422)


def install(app: FastAPI, retry_after_seconds: int) -> None:
    """Validation errors as one line; the database being away as 503 (logged once per interval)."""

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.error("database unavailable: %s", type(exc).__name__)
        return JSONResponse({"detail": f"the database cannot answer just now; try again in "
                                       f"{retry_after_seconds} s"},
                            status_code=503, headers={"Retry-After": str(retry_after_seconds)})

    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StoreUnavailable, unavailable)
    for kind in UNAVAILABLE:
        app.add_exception_handler(kind, unavailable)
