"""The agent endpoints: enroll once with a site token, then post report batches."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import datetime, timedelta

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response
from pydantic import TypeAdapter

from agent.protocol import BatchAck, EnrollRequest, EnrollResponse, ReportBatch
from controller.api.deps import CurrentAgent, RuntimeDep, current_agent, get_runtime
from controller.api.errors import Problem
from controller.api.payloads import BadPayload, parse_batch, parse_body
from controller.db import session_scope
from controller.register.enrollment import EnrollmentRefused, enroll
from controller.register.ingest import AuthFailed
from controller.timeutil import as_utc, utcnow

router = APIRouter(prefix="/api/v1/agent", tags=["agent"])
REPORTS_PATH = "/api/v1/agent/reports"
_JSON_BODY = {"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}}
_ACK = TypeAdapter(BatchAck)
_REFUSED = {401: {"model": Problem, "description": "unknown, expired, revoked or used-up token or credentials"}}


@router.post("/enroll", response_model=EnrollResponse, status_code=status.HTTP_201_CREATED,
             openapi_extra=_JSON_BODY, responses=_REFUSED)
async def enroll_agent(request: Request, runtime: RuntimeDep) -> EnrollResponse:
    payload = await parse_body(request, EnrollRequest)
    settings = runtime.settings

    def work() -> EnrollResponse:
        with session_scope(runtime.engine) as session:
            return enroll(session, payload, utcnow(), settings.report_interval_seconds)

    try:
        answer = await asyncio.to_thread(work)
    except EnrollmentRefused as exc:
        raise BadPayload(401, str(exc)) from None
    runtime.agents.forget_device(answer.device_id)
    return answer


def _schedule_day(batch: ReportBatch, max_age_days: int) -> datetime | None:
    """The instant a replaying agent asks its schedule from, if it is one reports may come from (the past
    the controller still takes reports for); anything else gets today's schedule."""
    wanted = batch.schedule_from
    now = utcnow()
    if wanted is None or not now - timedelta(days=max_age_days) <= as_utc(wanted) <= now:
        return None
    return as_utc(wanted)


@router.post("/reports", response_model=BatchAck, openapi_extra=_JSON_BODY, responses=_REFUSED)
async def post_reports(request: Request, runtime: RuntimeDep, agent: CurrentAgent) -> BatchAck:
    """Store a batch. Each report is answered on its own: ``accepted``, ``duplicate`` (stored before) or
    ``rejected`` with the reason (invalid, overlapping one already stored, more power than its class can
    draw, from the future or too old); a rejected report never holds back the others."""
    began = time.perf_counter()
    metrics = runtime.metrics.ingest
    try:
        batch, invalid = await parse_batch(request)
        try:
            ack = await asyncio.wrap_future(runtime.writer.submit(agent, batch, invalid))
        except AuthFailed as exc:
            raise HTTPException(status_code=401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        if runtime.schedules is not None and batch is not None:
            schedule = await runtime.schedules.reply(agent.device_id, batch.schedule_version,
                                                     _schedule_day(batch, runtime.settings.max_report_age_days))
            if schedule is not None:
                ack = replace(ack, schedule=schedule)
        metrics.accepted.inc(len(ack.accepted))
        if ack.duplicate:  # replays are rare: the common request pays one increment
            metrics.duplicate.inc(len(ack.duplicate))
        if ack.rejected:
            metrics.rejected.inc(len(ack.rejected))
        return ack
    finally:
        metrics.duration.observe(time.perf_counter() - began)


async def answer_reports(request: Request) -> Response:
    """``post_reports`` as FastAPI would call it (the same dependencies, the ack as its model serialises it),
    without FastAPI in between: the app's shortcut (api/shortcut.py) sends every report here."""
    runtime = await get_runtime(request)
    agent = await current_agent(runtime, request.headers.get("authorization"))
    ack = await post_reports(request, runtime, agent)
    return Response(_ACK.dump_json(ack, by_alias=True), media_type="application/json")
