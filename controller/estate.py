"""The estate at a glance: energy, power now, devices by state and agents by age, summed over sites.

These sums feed the Prometheus endpoint, so they are grouped by the few labels an operator filters on
(site, device class, state, method) and never by device: a thousand PCs stay a handful of series. The
one exception is opt-in: ``per_device_limit`` adds each device's power now for the first N devices (by
id, so the same devices every scrape) and counts the rest as dropped.

Energy is grouped by each device's *current* site and class. A device moved to another site takes its
history with it: the old site's counter goes down (Prometheus reads that as a counter reset) and the new
site's jumps. ``EnergyBucket`` does not record the site at the time, so this cannot be undone here; the
README says what it does to ``rate()`` and ``increase()`` over the move.

Device state is read from each device's latest report (by start) and how long ago it ended:

* no report ever: ``unknown``;
* the latest report ended within ``FRESH_INTERVALS`` report intervals: its own state
  (active -> ``on``, idle -> ``idle``, sleep -> ``asleep``, off -> ``off``);
* silent for longer, after a sleep report: ``asleep`` (a sleeping machine does not report);
* silent for longer otherwise: ``off``, until ``GONE_AFTER`` has passed, then ``unknown``: by then we
  cannot tell a machine switched off from one unplugged, reimaged or taken home.

Power now comes from the same latest reports, fresh ones only: each one's joules over its duration.
A device with no fresh report adds nothing (it is counted as off, asleep or unknown above).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from agent.protocol import PowerState
from controller.lifecycle.models import Asset
from controller.models import Agent, Device, EnergyBucket, Report, Site
from controller.timeutil import as_utc

FRESH_INTERVALS = 2
GONE_AFTER = timedelta(days=7)
DEVICE_STATES = ("on", "idle", "asleep", "off", "unknown")
UNREGISTERED = "unregistered"  # the lifecycle stage of a device the asset register does not hold
_STATE_NAMES = {PowerState.ACTIVE: "on", PowerState.IDLE: "idle", PowerState.SLEEP: "asleep", PowerState.OFF: "off"}
# (label, upper bound of the agent's silence); "never" is for agents that have not reported yet.
AGE_BUCKETS: tuple[tuple[str, timedelta], ...] = (
    ("under_15m", timedelta(minutes=15)), ("under_1h", timedelta(hours=1)),
    ("under_1d", timedelta(days=1)), ("under_7d", timedelta(days=7)),
)
AGE_LABELS = (*(label for label, _ in AGE_BUCKETS), "older", "never")


@dataclass(frozen=True)
class DevicePower:
    """One device's power now, for the opt-in per-device series."""

    device_id: int
    hostname: str
    site: str
    device_class: str
    watts: float


@dataclass(frozen=True)
class PerDevice:
    devices: list[DevicePower]
    dropped: int  # devices left out because of the cap


@dataclass(frozen=True)
class EstateSummary:
    """Everything the metrics show, keyed by label values; counts include explicit zeros."""

    energy_joules: dict[tuple[str, str, str, str], float]  # (site, device class, state, method)
    power_watts: dict[tuple[str, str, str], float]  # (site, device class, method)
    devices: dict[tuple[str, str, str], int]  # (site, device class, device state)
    agents: dict[tuple[str, str], int]  # (site, age bucket)
    per_device: PerDevice | None = None  # None unless per-device series are enabled
    # Figures the domain modules work out (energy accounting, lifecycle, policy, wake-on-LAN).
    saved_joules: dict[tuple[str, str], float] = field(default_factory=dict)  # (site, device class)
    carbon_grams: dict[tuple[str, str], float] = field(default_factory=dict)  # (site, device class)
    cost_pence: dict[tuple[str, str], float] = field(default_factory=dict)  # (site, device class)
    carbon_factors: dict[tuple[str, str], float] = field(default_factory=dict)  # (year, source): g/kWh
    lifecycle: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (site, device class, stage)
    out_of_hours: dict[tuple[str, str], int] = field(default_factory=dict)  # (site, device class)
    wake_requests: dict[tuple[str, str], int] = field(default_factory=dict)  # (site, outcome)


def summarise(session: Session, now: datetime, report_interval_seconds: int,
              per_device_limit: int | None = None) -> EstateSummary:
    """One consistent look at the estate; a few grouped queries, whatever the number of devices."""
    return EstateSummary(
        energy_joules=energy_totals(session),
        **_from_latest_reports(session, now, report_interval_seconds, per_device_limit),
        agents=agents_by_age(session, now),
        lifecycle=devices_by_lifecycle_state(session),
    )


def energy_totals(session: Session) -> dict[tuple[str, str, str, str], float]:
    """All energy ever accounted, by site, device class, state and method (a counter: it only grows)."""
    rows = session.exec(
        select(Site.name, Device.device_class, EnergyBucket.state, EnergyBucket.method, func.sum(EnergyBucket.joules))
        .join(Device, col(Device.id) == col(EnergyBucket.device_id))
        .join(Site, col(Site.id) == col(Device.site_id))
        .group_by(Site.name, Device.device_class, EnergyBucket.state, EnergyBucket.method)
    ).all()
    return {(site, device_class, state, method): float(joules or 0.0)
            for site, device_class, state, method, joules in rows}


def devices_by_lifecycle_state(session: Session) -> dict[tuple[str, str, str], int]:
    """Devices by asset-register state; a device not (yet) in the register is ``unregistered``.

    Only the states some device is in are listed: zeros for all nine states at every site and class
    would be most of the endpoint's series on a large estate, for nothing a dashboard needs.
    """
    rows = session.exec(
        select(Site.name, Device.device_class, Asset.state, func.count())
        .select_from(Device).join(Site, col(Site.id) == col(Device.site_id))
        .outerjoin(Asset, col(Asset.device_id) == col(Device.id))
        .group_by(Site.name, Device.device_class, Asset.state)
    ).all()
    return {(site, device_class, state or UNREGISTERED): count for site, device_class, state, count in rows}


def device_state(latest: Report | None, now: datetime, report_interval_seconds: int) -> str:
    """The state a device is shown in (rule in the module docstring)."""
    if latest is None:
        return "unknown"
    silence = now - as_utc(latest.end)
    if silence <= timedelta(seconds=FRESH_INTERVALS * report_interval_seconds):
        return _STATE_NAMES[PowerState(latest.state)]
    if latest.state == PowerState.SLEEP:
        return "asleep"
    return "off" if silence <= GONE_AFTER else "unknown"


def _latest_reports(session: Session) -> dict[int, Report]:
    newest = (select(Report.device_id, func.max(Report.start).label("start"))
              .group_by(Report.device_id).subquery())
    rows = session.exec(select(Report).join(
        newest, (col(Report.device_id) == newest.c.device_id) & (col(Report.start) == newest.c.start))).all()
    latest: dict[int, Report] = {}
    for row in rows:  # two agents of one re-enrolled machine may share a start: keep the later end
        if row.device_id not in latest or as_utc(row.end) > as_utc(latest[row.device_id].end):
            latest[row.device_id] = row
    return latest


def power_now(report: Report | None, now: datetime, fresh: timedelta) -> float | None:
    """A device's power from its latest report, or None when that report is stale or has no energy."""
    if report is None or report.method is None or report.joules is None or now - as_utc(report.end) > fresh:
        return None
    seconds = (as_utc(report.end) - as_utc(report.start)).total_seconds()
    return report.joules / seconds if seconds > 0 else None


def _from_latest_reports(session: Session, now: datetime, report_interval_seconds: int,
                         per_device_limit: int | None) -> dict:
    latest = _latest_reports(session)
    devices = session.exec(
        select(Device.id, Device.hostname, Site.name, Device.device_class)
        .join(Site, col(Site.id) == col(Device.site_id)).order_by(col(Device.id))).all()
    counts: Counter[tuple[str, str, str]] = Counter()
    watts: dict[tuple[str, str, str], float] = defaultdict(float)
    each: list[DevicePower] = []
    fresh = timedelta(seconds=FRESH_INTERVALS * report_interval_seconds)
    for device_id, hostname, site, device_class in devices:
        for state in DEVICE_STATES:
            counts.setdefault((site, device_class, state), 0)
        report = latest.get(device_id)
        counts[(site, device_class, device_state(report, now, report_interval_seconds))] += 1
        device_watts = power_now(report, now, fresh)
        if device_watts is not None:
            watts[(site, device_class, report.method)] += device_watts
        if per_device_limit is not None and len(each) < per_device_limit:
            each.append(DevicePower(device_id, hostname, site, device_class, device_watts or 0.0))
    per_device = None if per_device_limit is None else PerDevice(each, len(devices) - len(each))
    return {"devices": dict(counts), "power_watts": dict(watts), "per_device": per_device}


def age_bucket(last_seen: datetime | None, now: datetime) -> str:
    if last_seen is None:
        return "never"
    silence = now - as_utc(last_seen)
    return next((label for label, bound in AGE_BUCKETS if silence < bound), "older")


def agents_by_age(session: Session, now: datetime) -> dict[tuple[str, str], int]:
    """Working (not retired) agents by how long since they last reported, per site."""
    rows = session.exec(select(Site.name, Agent.last_seen).join(Site, col(Site.id) == col(Agent.site_id))
                        .where(col(Agent.retired_at).is_(None))).all()
    counts: Counter[tuple[str, str]] = Counter()
    for site, last_seen in rows:
        for label in AGE_LABELS:
            counts.setdefault((site, label), 0)
        counts[(site, age_bucket(last_seen, now))] += 1
    return dict(counts)
