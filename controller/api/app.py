"""The app factory: everything the service holds is built here, per app, never on import."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from controller import migrate, web
from controller.api import errors
from controller.api.deps import Runtime
from controller.api.limits import RequestGuard
from controller.api.payloads import BadPayload, bad_payload_response
from controller.api.routes import (
    agent,
    assets,
    audit,
    conflicts,
    devices,
    downloads,
    energy,
    health,
    lifecycle,
    metrics,
    policy,
    reports,
    sites,
    staff,
    wake,
)
from controller.api.shortcut import Shortcut
from controller.db import make_engine
from controller.jobs.estate import JobName, job, jobs
from controller.jobs.singleton import JobRunner, run_once
from controller.metrics import build_metrics
from controller.policy.dispatch import SchedulePlanner
from controller.policy.store import PolicyStore
from controller.power.election import powers_down_soon
from controller.power.service import WakeService
from controller.register.ingest import AgentDirectory, IngestWriter, ReportLimits
from controller.settings import Settings
from controller.snmp.service import start_polling
from controller.web.throttle import SignInThrottle


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    engine = engine or make_engine(settings.resolved_database_url())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        migrate.upgrade(engine)
        run_once(engine, job(settings, JobName.PARTITIONS))  # a report always finds its partition
        policies = PolicyStore(settings.resolved_policy_dir(), engine)
        lookahead = timedelta(seconds=settings.relay_power_down_lookahead_seconds)

        def powering_down(device_id: int, now: datetime) -> bool:  # a relay must not be about to power down
            return bool(policies.current().policies) and powers_down_soon(schedules.schedule_for(device_id), now,
                                                                          lookahead)

        # The wake-on-LAN dispatcher; ingest confirms wakes and feeds relays, which stay awake out of hours.
        wake = WakeService(engine, settings, powering_down=powering_down)
        schedules = SchedulePlanner(policies, engine, settings.schedule_hours, settings.power_downs_per_minute,
                                    relays=lambda: wake.board.relay_devices)
        writer = IngestWriter(engine, settings.report_interval_seconds, settings.ingest_group_size, wake=wake,
                              limits=ReportLimits(settings.clock_skew_seconds, settings.report_age_limit_days()))
        writer.start()
        wake.start()
        snmp = start_polling(settings, engine)  # registered SNMP kit, every snmp_poll_interval_seconds
        # Partitions, rollups, retention, scheduled wakes: one replica at a time.
        singletons = JobRunner(engine, jobs(settings, policies))
        singletons.start()
        app.state.runtime = Runtime(settings=settings, engine=engine, agents=AgentDirectory(engine), writer=writer,
                                    metrics=build_metrics(engine, writer, settings, policies=policies,
                                                          wake=wake.counters),
                                    policies=policies,
                                    schedules=schedules,
                                    signin=SignInThrottle(settings.signin_free_failures,
                                                          max_delay=settings.signin_max_delay_seconds,
                                                          global_failures_per_minute=settings.signin_failures_per_minute,
                                                          hash_slots=settings.signin_hash_slots))
        # Everything loaded so far (SQLAlchemy, pydantic, FastAPI) lives as long as the process; frozen,
        # full collections stop walking it, which removes ~100 ms stalls from ingest's tail latency.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if snmp is not None:
                await snmp.stop()
            singletons.stop()
            wake.stop()
            writer.stop()

    # The interactive docs load their viewer from a CDN, so they are off unless a setting turns them on;
    # /openapi.json (the contract) is always served.
    docs = {} if settings.api_docs else {"docs_url": None, "redoc_url": None}
    app = FastAPI(title="Caretaker controller", version="0.1.0", lifespan=lifespan,
                  responses=errors.COMMON, **docs)
    # Innermost of the middlewares: agent reports skip the routing and dependency solving below (shortcut.py).
    app.add_middleware(Shortcut, method="POST", path=agent.REPORTS_PATH, answer=agent.answer_reports)
    app.add_middleware(RequestGuard, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth,
                       per_item_paths=[agent.REPORTS_PATH])
    app.add_exception_handler(BadPayload, bad_payload_response)
    errors.install(app, settings.retry_after_seconds)
    signed_in = errors.SIGNED_IN
    app.include_router(health.router)
    app.include_router(agent.router)
    app.include_router(downloads.router, responses=errors.NOT_FOUND)
    app.include_router(metrics.router, responses={401: signed_in[401]})
    app.include_router(energy.router, responses={**signed_in})
    app.include_router(wake.router, responses={**signed_in, **errors.NOT_FOUND})
    app.include_router(staff.router, responses={**signed_in})
    app.include_router(audit.router, responses={**signed_in, **errors.NOT_FOUND})
    app.include_router(policy.router, responses={**signed_in, **errors.NOT_FOUND})
    app.include_router(reports.router, responses={**signed_in, **errors.NOT_FOUND})
    app.include_router(lifecycle.router, responses={**signed_in, **errors.NOT_FOUND, **errors.REFUSED})
    app.include_router(assets.router, responses={**signed_in})
    app.include_router(devices.router, responses={**signed_in, **errors.NOT_FOUND, **errors.REFUSED})
    app.include_router(sites.router, responses={**signed_in, **errors.NOT_FOUND, **errors.REFUSED})
    app.include_router(conflicts.router, responses={**signed_in, **errors.NOT_FOUND, **errors.REFUSED})
    web.install(app)  # the console's pages; also turns NotSignedIn into 401 or a sign-in redirect
    return app
