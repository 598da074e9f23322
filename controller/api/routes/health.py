"""Liveness and readiness, kept apart so a load balancer and an orchestrator get honest answers.

``/healthz`` says the process is up and serving, with no database work (also the ceiling the ingest
benchmark compares against). ``/readyz`` says it can do its job: the database answers and its schema is
at this controller's migration head; otherwise 503 with what is wrong, so traffic goes elsewhere.
"""

from __future__ import annotations

import asyncio

from alembic.migration import MigrationContext
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from controller import migrate
from controller.api.deps import RuntimeDep
from controller.api.errors import Problem
from controller.db import UNAVAILABLE

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str  # "ready", or what stops it
    database: str  # "ok" or why not
    schema_revision: str | None
    expected_revision: str


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness,
            responses={503: {"model": Readiness, "description": "not ready: the database or its schema"},
                       422: {"model": Problem, "description": "a malformed request"}})
async def readyz(runtime: RuntimeDep) -> Readiness | JSONResponse:
    expected = migrate.head()

    def current() -> str | None:
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            return MigrationContext.configure(connection).get_current_revision()

    try:
        revision = await asyncio.wait_for(asyncio.to_thread(current), timeout=10)
    except (TimeoutError, *UNAVAILABLE) as exc:
        answer = Readiness(status="database unreachable", database=type(exc).__name__, schema_revision=None,
                           expected_revision=expected)
        return JSONResponse(answer.model_dump(), status_code=503, headers={"Retry-After": "10"})
    if revision != expected:
        answer = Readiness(status="schema not current", database="ok", schema_revision=revision,
                           expected_revision=expected)
        return JSONResponse(answer.model_dump(), status_code=503, headers={"Retry-After": "10"})
    return Readiness(status="ready", database="ok", schema_revision=revision, expected_revision=expected)
