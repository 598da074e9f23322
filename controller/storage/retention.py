"""Retention: reports kept ``report_retention_days``, hourly buckets ``hourly_retention_years``, rollups for ever.

A report's energy is in the hourly buckets the moment it is stored, and in the daily rollup once its
day is rolled, so dropping report rows changes no energy figure; they are the raw evidence and the
idempotency key while an agent might still resend them (ingest refuses reports older than the
retention, so a dropped report cannot come back as new). Hourly buckets answer the edges of periods
and hour-of-day questions; past ``hourly_retention_years`` only their rolled days are kept, and hours
not yet rolled are never dropped.

PostgreSQL drops whole daily partitions of the report table (controller.storage.partitions). SQLite
deletes in batches of ``BATCH`` rows, committing each, so ingest's writes never wait long behind it.
Buckets are deleted a few hundred devices at a time through their primary key (device, hour).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, delete, text
from sqlmodel import Session, col, select

from controller.db import UTCDateTime
from controller.energy.rolled import day_start, rolled_through
from controller.register.models import AwakeHour, Device, EnergyBucket
from controller.storage import partitions
from controller.timeutil import as_utc

BATCH = 5000
_BATCH_DELETE = text("DELETE FROM report WHERE rowid IN (SELECT rowid FROM report WHERE start < :cutoff LIMIT :n)"
                     ).bindparams(bindparam("cutoff", type_=UTCDateTime))
DEVICES_AT_A_TIME = 500


@dataclass(frozen=True)
class Dropped:
    reports_before: date
    report_rows: int | None  # None where whole partitions went (no count is kept)
    partitions: tuple[str, ...]
    hours_before: date | None
    bucket_rows: int

    def details(self) -> dict:
        return {"reports_before": self.reports_before.isoformat(), "report_rows": self.report_rows,
                "partitions": list(self.partitions),
                "hours_before": self.hours_before.isoformat() if self.hours_before else None,
                "bucket_rows": self.bucket_rows}


def report_cutoff(now: datetime, retention_days: int) -> date:
    """Reports starting before this day are dropped: ``retention_days`` whole days are always kept."""
    return as_utc(now).date() - timedelta(days=retention_days)


def hours_cutoff(session: Session, now: datetime, years: int) -> date | None:
    """Buckets before this day go: ``years`` back, and never past the days the rollup holds."""
    through = rolled_through(session)
    if through is None:
        return None
    today = as_utc(now).date()
    try:
        back = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        back = today.replace(year=today.year - years, day=28)
    return min(back, through)


def drop_reports(session: Session, cutoff: date) -> tuple[int | None, list[str]]:
    connection = session.connection()
    if partitions.partitioned(connection):
        return None, partitions.drop_before(connection, cutoff)
    total = 0
    while True:
        removed = connection.execute(_BATCH_DELETE, {"cutoff": day_start(cutoff), "n": BATCH}).rowcount
        session.commit()
        total += removed
        if removed < BATCH:
            return total, []


def drop_hours(session: Session, cutoff: date) -> int:
    """Hourly buckets, and what held each device awake in those hours (useless without their energy)."""
    ids = list(session.exec(select(Device.id).order_by(col(Device.id))))
    total = 0
    for i in range(0, len(ids), DEVICES_AT_A_TIME):
        total += session.execute(delete(EnergyBucket).where(
            col(EnergyBucket.device_id).in_(ids[i:i + DEVICES_AT_A_TIME]),
            col(EnergyBucket.hour) < day_start(cutoff))).rowcount
        session.execute(delete(AwakeHour).where(col(AwakeHour.device_id).in_(ids[i:i + DEVICES_AT_A_TIME]),
                                                col(AwakeHour.hour) < day_start(cutoff)))
        session.commit()
    return total


def apply(session: Session, now: datetime, report_retention_days: int, hourly_retention_years: int) -> Dropped:
    """One turn of the retention job."""
    cutoff = report_cutoff(now, report_retention_days)
    rows, dropped = drop_reports(session, cutoff)
    hours = hours_cutoff(session, now, hourly_retention_years)
    buckets = drop_hours(session, hours) if hours is not None else 0
    return Dropped(cutoff, rows, tuple(dropped), hours, buckets)
