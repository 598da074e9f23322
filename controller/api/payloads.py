"""Turning request bodies into protocol objects, with errors a person (or an agent) can act on.

A 422 answer names each bad field. A report batch is judged report by report: a report that fails
validation is answered in the batch's ``rejected`` list with its reason and the rest are stored, so one
poisoned report never holds back the good ones; only a batch whose envelope is wrong (or whose bad report
has no usable seq to name) is refused whole, with 422.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

from agent.protocol import MAX_INT, RejectedReport, ReportBatch

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


async def parse_batch(request: Request) -> tuple[ReportBatch | None, tuple[RejectedReport, ...]]:
    """The batch's valid reports (None if there are none) and, for each invalid one, its seq and why.

    The whole body is validated at once first (the common case costs one parse); only a failing batch
    is taken apart, each report validated on its own.
    """
    body = await request.body()
    adapter = _adapter(ReportBatch)
    try:
        return adapter.validate_json(body, strict=True), ()
    except ValidationError as exc:
        failure = exc
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as json_error:
        raise BadPayload(400, f"request body is not valid JSON: {json_error}") from None
    bad: dict[int, list[str]] = {}
    for error in failure.errors():
        loc = error["loc"]
        seq = _seq_at(raw, loc)
        if seq is None:  # the envelope is wrong, or a bad report cannot be named: refuse it all
            raise _unprocessable(failure, raw) from None
        where = _path(loc[2:]) if len(loc) > 2 else "report"
        bad.setdefault(loc[1], []).append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    rejected = tuple(RejectedReport(raw["reports"][i]["seq"], f"report {raw['reports'][i]['seq']} is invalid: "
                                    + "; ".join(problems[:_MAX_ERRORS])[:400]) for i, problems in bad.items())
    good = [report for i, report in enumerate(raw["reports"]) if i not in bad]
    if not good:
        return None, rejected
    try:
        return adapter.validate_json(json.dumps({**raw, "reports": good}), strict=True), rejected
    except ValidationError as again:
        raise _unprocessable(again, raw) from None


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
        return seq if isinstance(seq, int) and not isinstance(seq, bool) and 1 <= seq <= MAX_INT else None
    return None
