"""The controller's singleton jobs, as the app runs them (wake dispatch and SNMP polling lead their own way:
controller.power.service, controller.snmp.service)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Session

from controller.energy.rolling import roll
from controller.jobs.singleton import Job
from controller.policy.store import PolicyStore
from controller.power.scheduled import ScheduledWakes
from controller.power.wake import WakeConfig
from controller.settings import Settings
from controller.storage import partitions, retention


class JobName(StrEnum):
    ROLLUP = "rollup"
    RETENTION = "retention"
    PARTITIONS = "partitions"
    SCHEDULED_WAKES = "scheduled_wakes"


def make_partitions(session: Session, now: datetime, retention_days: int) -> dict:
    connection = session.connection()
    if not partitions.partitioned(connection):
        return {"partitioned": False}
    return {"partitioned": True, "made": partitions.ensure(connection, now, retention_days)}


def jobs(settings: Settings, policies: PolicyStore | None = None) -> list[Job]:
    """``policies``: the policies in force; with them, the wakes their schedules promise are queued."""
    wakes = [Job(JobName.SCHEDULED_WAKES, settings.scheduled_wakes_every_seconds,
                 ScheduledWakes(policies, WakeConfig.from_settings(settings)))] if policies is not None else []
    return [*wakes,
        Job(JobName.PARTITIONS, settings.partitions_every_seconds,
            lambda session, now: make_partitions(session, now, settings.report_retention_days)),
        Job(JobName.ROLLUP, settings.rollup_every_seconds,
            lambda session, now: roll(session, now, settings.report_interval_seconds).details(),
            first_after_seconds=min(60.0, settings.rollup_every_seconds)),
        Job(JobName.RETENTION, settings.retention_every_seconds,
            lambda session, now: retention.apply(session, now, settings.report_retention_days,
                                                 settings.hourly_retention_years).details(),
            first_after_seconds=min(600.0, settings.retention_every_seconds)),
    ]


def job(settings: Settings, name: JobName) -> Job:
    return next(j for j in jobs(settings) if j.name == name)
