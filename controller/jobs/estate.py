"""The controller's singleton jobs, as the app runs them (wake dispatch and SNMP polling lead their own way:
controller.power.service, controller.snmp.service)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Session

from controller.energy.rolling import roll
from controller.jobs.singleton import Job
from controller.power.maintenance import maintenance_wakes
from controller.power.wake import WakeConfig
from controller.settings import Settings
from controller.storage import partitions, retention


class JobName(StrEnum):
    ROLLUP = "rollup"
    RETENTION = "retention"
    PARTITIONS = "partitions"
    MAINTENANCE_WAKES = "maintenance_wakes"


def make_partitions(session: Session, now: datetime, retention_days: int) -> dict:
    connection = session.connection()
    if not partitions.partitioned(connection):
        return {"partitioned": False}
    return {"partitioned": True, "made": partitions.ensure(connection, now, retention_days)}


def wake_for_maintenance(session: Session, now: datetime, settings: Settings) -> dict:
    """The policy directory as it is now (a policy that does not load wakes nothing: the error is the run's)."""
    from controller.reports.service import ReportError, load_inputs

    try:
        inputs = load_inputs(settings.resolved_policy_dir())
    except ReportError as exc:
        return {"error": str(exc)}
    result = maintenance_wakes(session, inputs.policies, inputs.calendars or {}, now,
                               WakeConfig.from_settings(settings))
    return {"queued": len(result.queued), "skipped": [f"{s.hostname}: {s.why}" for s in result.skipped][:20]}


def jobs(settings: Settings) -> list[Job]:
    return [
        Job(JobName.PARTITIONS, settings.partitions_every_seconds,
            lambda session, now: make_partitions(session, now, settings.report_retention_days)),
        Job(JobName.ROLLUP, settings.rollup_every_seconds,
            lambda session, now: roll(session, now, settings.report_interval_seconds).details(),
            first_after_seconds=min(60.0, settings.rollup_every_seconds)),
        Job(JobName.RETENTION, settings.retention_every_seconds,
            lambda session, now: retention.apply(session, now, settings.report_retention_days,
                                                 settings.hourly_retention_years).details(),
            first_after_seconds=min(600.0, settings.retention_every_seconds)),
        Job(JobName.MAINTENANCE_WAKES, settings.maintenance_wakes_every_seconds,
            lambda session, now: wake_for_maintenance(session, now, settings)),
    ]


def job(settings: Settings, name: JobName) -> Job:
    return next(j for j in jobs(settings) if j.name == name)
