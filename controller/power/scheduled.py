"""Scheduled wakes: the wakes compiled schedules promise (the wake before school, maintenance windows, the
wake on an exam day) queued as wake requests when they fall due, so a PC shut down over the weekend is on
at 07:30 on Monday. Before this job the schedules listed wakes that nothing sent.

Runs as a singleton job (controller/jobs): one replica queues each wake; a wake already requested within
``wake_rewake_seconds`` is not queued again (power/wake.py), so a turn repeated after a failover is harmless.
Policies in observe mode wake nothing: observe records what it would do and never acts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from controller.policy.model import Mode
from controller.policy.plan import plan
from controller.policy.store import ActiveSet
from controller.power.wake import WakeConfig, request_wakes
from controller.register.facts import register_facts
from controller.register.models import ChangeRecord, Device

SCHEDULER = "controller:schedule"
LOOKBACK = timedelta(minutes=10)  # a turn missed (a restart, a failover) still sends a wake this late


@dataclass(frozen=True)
class DueWake:
    device_id: int
    at: datetime
    reason: str


def day_wakes(session: Session, active: ActiveSet, day: date) -> list[DueWake]:
    """Every wake the schedules promise from an hour before ``day`` (UTC) for two days, by the schedules'
    own compiler (policy/plan.py) and the register's ``device_facts``."""
    if not active.policies:
        return []
    facts = register_facts(session, active.placement)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=1)
    found = []
    for schedule in plan(active.policies, active.calendars, facts, start, 2).values():
        if schedule.policy is None or active.named(schedule.policy).power.mode is Mode.OBSERVE:
            continue
        found.extend(DueWake(int(schedule.device_id), w.at.astimezone(UTC), f"{w.basis}: {w.label}")
                     for w in schedule.wakes)
    return sorted(found, key=lambda w: w.at)


class ScheduledWakes:
    """The job's work: the day's wakes are compiled once per policy set, register change and day."""

    def __init__(self, policies, config: WakeConfig) -> None:
        self._policies = policies
        self._config = config
        self._key: tuple | None = None
        self._wakes: list[DueWake] = []

    def __call__(self, session: Session, now: datetime) -> dict:
        active = self._policies.current()
        changed = session.exec(select(func.max(ChangeRecord.id)).where(ChangeRecord.object_type == "device")).one()
        count = session.exec(select(func.count(col(Device.id)))).one()
        key = (active.version, changed, count, now.astimezone(UTC).date())
        if key != self._key:
            self._wakes, self._key = day_wakes(session, active, key[3]), key
        since = now - min(LOOKBACK, timedelta(seconds=self._config.rewake_seconds))
        due = [w for w in self._wakes if since < w.at <= now]
        if not due:
            return {"due": 0}
        reasons = {w.device_id: w.reason for w in due}
        devices = session.exec(select(Device).where(col(Device.id).in_(sorted(reasons)))).all()
        queued = skipped = 0
        for reason in sorted(set(reasons.values())):
            result = request_wakes(session, [d for d in devices if reasons[d.id] == reason], f"scheduled: {reason}",
                                   SCHEDULER, now, self._config)
            queued, skipped = queued + len(result.queued), skipped + len(result.skipped)
        return {"due": len(due), "queued": queued, "skipped": skipped}
