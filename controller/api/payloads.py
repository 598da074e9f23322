"""Turning request bodies into protocol objects, with errors a person (or an agent) can act on.

A 422 answer names each bad field and, for a report batch, lists the ``rejected`` seqs, so an agent
can drop the reports that can never be accepted and resend the rest instead of wedging its queue.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

T = TypeVar("T")
_MAX_ERRORS = 5


class BadPayload(Exception):
    def __init__(self, status_code: int, detail: str, rejected: list[int] | None = None):
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.rejected = rejected or []


async def bad_payload_response(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BadPayload)
    content: dict[str, Any] = {"detail": exc.detail}
    if exc.rejected:
        content["rejected"] = exc.rejected
    return JSONResponse(status_code=exc.status_code, content=content)


@cache
def _adapter(model: type) -> TypeAdapter:
    return TypeAdapter(model)


async def parse_body(request: Request, model: type[T]) -> T:
    """Validate the raw body strictly against a protocol dataclass (no "5" for 5, no true for 1.0)."""
    body = await request.body()
    try:
        return _adapter(model).validate_json(body, strict=True)
    except ValidationError as exc:
        try:
            raw = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as json_error:
            raise BadPayload(400, f"request body is not valid JSON: {json_error}") from None
        raise _unprocessable(exc, raw) from None


def _unprocessable(exc: ValidationError, raw: Any) -> BadPayload:
    errors = exc.errors()
    problems = []
    rejected: set[int] = set()
    for error in errors[:_MAX_ERRORS]:
        problems.append(f"{_path(error['loc'])}: {error['msg'].removeprefix('Value error, ')}")
    for error in errors:
        seq = _seq_at(raw, error["loc"])
        if seq is not None:
            rejected.add(seq)
    more = len(errors) - _MAX_ERRORS
    return BadPayload(422, "; ".join(problems) + (f"; and {more} more" if more > 0 else ""), sorted(rejected))


def _path(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _seq_at(raw: Any, loc: tuple) -> int | None:
    """The seq of the report an error sits in, when the error is inside one report of a batch."""
    if len(loc) >= 2 and loc[0] == "reports" and isinstance(loc[1], int):
        try:
            seq = raw["reports"][loc[1]]["seq"]
        except (KeyError, IndexError, TypeError):
            return None
        return seq if isinstance(seq, int) and not isinstance(seq, bool) else None
    return None
