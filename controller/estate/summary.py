"""The estate at a glance, summed over sites: what /metrics shows, gathered in one pass per cache period.

These sums feed the Prometheus endpoint, so they are grouped by the few labels an operator filters on
(site, device class, state, method, and a bounded stage or outcome) and never by device: a thousand PCs
stay a handful of series. The one exception is opt-in: ``per_device_limit`` adds each device's power now
for the first N devices (by id, so the same devices every scrape) and counts the rest as dropped.

The figures other packages own are asked of them, not recomputed here: carbon factors and tariffs
(controller.energy), policy savings (controller.energy.savings), devices on out of hours
(controller.policy.compliance), wake outcomes (controller.power.wake), register states (lifecycle).

Energy, carbon and cost are the energy package's one total (``energy_totals``), the same figures as
``caretaker energy summary``, the web API and the reports: metered hours replace the agent's rows, RAPL
is corrected to the wall, monitors are added and silence is attributed, so summing the method series
never counts a device-hour twice. Carbon is each hour's energy at the factor for the hour's local year;
cost is each site-hour at the tariff band(s) in force, unpriced hours left out.

Counters count **settled hours** only: whole UTC hours that ended at least ``FRESH_INTERVALS`` report
intervals ago, so the reports that straddle an hour's end are in before it is counted, and a counter
never has to take back the hour it is in. An hour can still change after it settled (a spool flushed
after a week offline replaces attributed silence; a meter's late reading replaces the agent's rows).
Each counter is therefore held at the highest value it was exported with (``ratchet``): Prometheus
never sees it go down (which it would read as a reset and count the whole total again), and it rejoins
the energy package's figure as soon as that passes it again.

Energy is grouped by each device's *current* site and class. A device moved to another site takes its
history with it: the old site's counters go down (Prometheus reads that as a counter reset) and the new
site's jump. ``EnergyBucket`` does not record the site at the time, so this cannot be undone here; the
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

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import ColumnElement, Subquery, case, func
from sqlmodel import Session, col, select

from agent.protocol import PowerState
from controller.db import seconds_between
from controller.energy import carbon
from controller.energy.accounting import energy_totals
from controller.energy.savings import savings_summary
from controller.estate import counters
from controller.lifecycle.models import Asset
from controller.policy.compliance import out_of_hours_on
from controller.policy.store import ActiveSet
from controller.power.models import OPEN_STATUSES, WakeStatus
from controller.power.wake import wake_outcomes
from controller.register.facts import device_facts
from controller.register.models import Agent, Device, DeviceLatest, EnergyBucket, Site
from controller.timeutil import as_utc, hour_floor

log = logging.getLogger(__name__)
T = TypeVar("T")
SECTIONS = ("savings", "lifecycle", "out_of_hours", "wakes")  # the figures other packages work out

FRESH_INTERVALS = 2
GONE_AFTER = timedelta(days=7)
DEVICE_STATES = ("on", "idle", "asleep", "off", "unknown")
UNREGISTERED = "unregistered"  # the lifecycle stage of a device the asset register does not hold
# Finished wakes only: a counter of in-flight statuses would go down as each wake moves on.
WAKE_OUTCOMES = (WakeStatus.CONFIRMED.value, WakeStatus.FAILED.value)
JOULES_PER_KWH = 3.6e6
AWAKE = (PowerState.ACTIVE.value, PowerState.IDLE.value)
# Savings are claimed from every policy action there is; this is before any could have been taken.
BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
_STATE_NAMES = {PowerState.ACTIVE: "on", PowerState.IDLE: "idle", PowerState.SLEEP: "asleep", PowerState.OFF: "off"}
# (label, upper bound of the agent's silence); "never" is for agents that have not reported yet.
AGE_BUCKETS: tuple[tuple[str, timedelta], ...] = (
    ("under_15m", timedelta(minutes=15)), ("under_1h", timedelta(hours=1)),
    ("under_1d", timedelta(days=1)), ("under_7d", timedelta(days=7)),
)
AGE_LABELS = (*(label for label, _ in AGE_BUCKETS), "older", "never")

SiteClass = tuple[str, str]


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
class History:
    """The counters summed over all history: the expensive part, so it is refreshed less often."""

    energy_joules: dict[tuple[str, str, str, str], float]  # (site, device class, state, method)
    carbon_grams: dict[SiteClass, float]
    cost_pence: dict[SiteClass, float]  # priced hours only
    saved_joules: dict[SiteClass, float]  # zeros included
    failed: tuple[str, ...] = ()  # sections that raised (see ``_guarded``)


NO_HISTORY = History({}, {}, {}, {})


@dataclass(frozen=True)
class EstateSummary:
    """Everything the metrics show, keyed by label values; counts include explicit zeros where noted."""

    power_watts: dict[tuple[str, str, str], float]  # (site, device class, method)
    devices: dict[tuple[str, str, str], int]  # (site, device class, device state), zeros included
    agents: dict[tuple[str, str], int]  # (site, age bucket), zeros included
    history: History = NO_HISTORY
    carbon_factors: dict[tuple[str, str], float] = field(default_factory=dict)  # (year, source): g/kWh
    lifecycle: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (site, device class, stage)
    out_of_hours: dict[SiteClass, int] = field(default_factory=dict)  # zeros included
    wake_requests: dict[tuple[str, str], int] = field(default_factory=dict)  # (site, outcome), zeros included
    wakes_open: dict[tuple[str, str], int] = field(default_factory=dict)  # (site, status) in flight
    per_device: PerDevice | None = None  # None unless per-device series are enabled
    failed: tuple[str, ...] = ()  # sections that raised (see ``_guarded``)


def summarise(session: Session, now: datetime, report_interval_seconds: int, per_device_limit: int | None = None,
              policies: ActiveSet | None = None, past: History | None = None) -> EstateSummary:
    """One look at the estate now, with ``past`` (the history counters) when the caller holds them,
    else worked out here. Grouped queries: the database does the per-device work, Python sees sums."""
    fresh_since = now - timedelta(seconds=FRESH_INTERVALS * report_interval_seconds)
    latest = _latest()
    seconds = seconds_between(session, latest.c.start, latest.c.end)
    site_classes = set(session.exec(select(Site.name, Device.device_class).distinct()
                                    .join(Site, col(Site.id) == col(Device.site_id))).all())
    failed: list[str] = []
    return EstateSummary(
        **devices_and_power(session, latest, seconds, now, fresh_since, site_classes),
        agents=agents_by_age(session, now),
        history=past if past is not None else history(session, now, report_interval_seconds),
        carbon_factors=carbon_factors(session),
        lifecycle=_guarded(session, "lifecycle", failed, lambda: devices_by_lifecycle_state(session), {}),
        out_of_hours=_guarded(session, "out_of_hours", failed,
                              lambda: out_of_hours(session, policies, latest, now, fresh_since, site_classes), {}),
        **_guarded(session, "wakes", failed, lambda: wakes_by_outcome(session, {site for site, _ in site_classes}),
                   {"wake_requests": {}, "wakes_open": {}}),
        failed=tuple(failed),
        per_device=None if per_device_limit is None else per_device_power(session, latest, seconds, fresh_since,
                                                                          per_device_limit),
    )


def settled_until(now: datetime, report_interval_seconds: int) -> datetime:
    """The end of the last settled hour: its last reports (``FRESH_INTERVALS`` intervals late) are in."""
    return hour_floor(now - timedelta(seconds=FRESH_INTERVALS * report_interval_seconds))


def history(session: Session, now: datetime, report_interval_seconds: int = 300,
            previous: History | None = None) -> History:
    """Energy, carbon, cost and savings over all settled history, never below ``previous`` (the values
    last exported) nor the values any replica stored (controller.estate.counters; see ``ratchet``), which
    it then raises to these. Rolled-up days and months are read as such (controller.energy.rollup); still
    seconds on a large estate (bench/metrics_scrape.py): the metrics cache refreshes it in the background."""
    energy, grams, pence = energy_carbon_cost(session, settled_until(now, report_interval_seconds))
    failed: list[str] = []
    saved = _guarded(session, "savings", failed, lambda: saved_by_site(session, now), {})
    found = History(energy, grams, pence, saved, tuple(failed))
    for floor in (previous, counters.load(session)):  # what this replica, or any, exported before
        if floor is not None:
            found = ratchet(floor, found)
    counters.store(session, found)
    session.commit()
    return found


def ratchet(previous: History, found: History) -> History:
    """Each counter at the higher of its last exported value and its new one: counters never go down."""
    def higher(old: dict, new: dict) -> dict:
        return {key: max(value, old.get(key, value)) for key, value in {**old, **new}.items()}

    return History(higher(previous.energy_joules, found.energy_joules),
                   higher(previous.carbon_grams, found.carbon_grams), higher(previous.cost_pence, found.cost_pence),
                   higher(previous.saved_joules, found.saved_joules), found.failed)


def _guarded(session: Session, section: str, failed: list[str], work: Callable[[], T], fallback: T) -> T:
    """A section another package works out: if it raises, log it, name it in ``failed`` and show nothing
    for it, so one package's bug does not take the whole of /metrics (and every other figure) down."""
    try:
        return work()
    except Exception:
        log.exception("metrics: the %s figures failed; the other series are still served", section)
        session.rollback()  # PostgreSQL refuses further queries in a failed transaction
        failed.append(section)
        return fallback


def energy_carbon_cost(session: Session, until: datetime) -> tuple[dict, dict[SiteClass, float],
                                                                  dict[SiteClass, float]]:
    """All energy accounted before ``until``, by site, class, state and method, with its carbon and cost
    by site and class: the energy package's one total, grouped by the labels the metrics carry."""
    earliest = session.exec(select(func.min(EnergyBucket.hour))).one()
    if earliest is None or as_utc(earliest) >= until:
        return {}, {}, {}
    totals = energy_totals(session, as_utc(earliest), until, ("site", "device_class", "state", "method"), now=until)
    energy: dict[tuple[str, str, str, str], float] = {}
    grams: dict[SiteClass, Decimal] = defaultdict(Decimal)
    pence: dict[SiteClass, Decimal] = defaultdict(Decimal)
    for (site, device_class, state, method), total in totals.groups.items():
        energy[(site, device_class, state, method)] = float(total.wh * 3600)
        grams[(site, device_class)] += total.grams
        pence[(site, device_class)] += total.pence  # energy before the site's first tariff is unpriced, not free
    return energy, {k: float(v) for k, v in grams.items()}, {k: float(v) for k, v in pence.items()}


def carbon_factors(session: Session) -> dict[tuple[str, str], float]:
    """The generation factors known, shipped or edited, in g/kWh: one series per year, a handful in all."""
    return {(str(year), f.source): float(f.generation) * 1000 for year, f in carbon.load(session).years.items()}


def saved_by_site(session: Session, now: datetime) -> dict[SiteClass, float]:
    """Energy saved by every policy action so far (controller.energy.savings' counterfactual), in joules."""
    where = {device_id: (site, device_class) for device_id, site, device_class in session.exec(
        select(Device.id, Site.name, Device.device_class).join(Site, col(Site.id) == col(Device.site_id)))}
    saved = dict.fromkeys(where.values(), 0.0)
    for action in savings_summary(session, BEGINNING, now, now=now).actions:
        if action.device_id in where:
            saved[where[action.device_id]] += float(action.saved_kwh) * JOULES_PER_KWH
    return saved


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


def out_of_hours(session: Session, policies: ActiveSet | None, latest: Subquery, now: datetime,
                 fresh_since: datetime, site_classes: set[SiteClass]) -> dict[SiteClass, int]:
    """Devices awake (a fresh active or idle report) while their policy says power down, zeros included."""
    counts = dict.fromkeys(site_classes, 0)
    if policies is None or not policies.policies:
        return counts
    rows = session.exec(
        select(Device, Site, latest.c.state)
        .join(Site, col(Site.id) == col(Device.site_id)).join(latest, latest.c.device_id == col(Device.id))
        .where(latest.c.end >= fresh_since, latest.c.state.in_(AWAKE))).all()
    awake = [(device_facts(device, site, policies.placement), state) for device, site, state in rows]
    counts.update(out_of_hours_on(policies.policies, policies.calendars, awake, now))
    return counts


def wakes_by_outcome(session: Session, sites: set[str]) -> dict[str, dict[tuple[str, str], int]]:
    """Finished wakes by outcome (a counter, zeros included) and wakes in flight by status (a gauge)."""
    finished = {(site, outcome): 0 for site in sites for outcome in WAKE_OUTCOMES}
    in_flight: dict[tuple[str, str], int] = {}
    for (site, status), count in wake_outcomes(session).items():
        if status in WAKE_OUTCOMES:
            finished[(site, status)] = count
        elif status in OPEN_STATUSES:
            in_flight[(site, status)] = count
    return {"wake_requests": finished, "wakes_open": in_flight}


def device_state(latest: LatestReport | None, now: datetime, report_interval_seconds: int) -> str:
    """The state a device is shown in (rule in the module docstring)."""
    if latest is None:
        return "unknown"
    silence = now - as_utc(latest.end)
    if silence <= timedelta(seconds=FRESH_INTERVALS * report_interval_seconds):
        return _STATE_NAMES[PowerState(latest.state)]
    if latest.state == PowerState.SLEEP:
        return "asleep"
    return "off" if silence <= GONE_AFTER else "unknown"


@dataclass(frozen=True)
class LatestReport:
    """The columns of a device's latest report that state and power need (not the stored samples)."""

    device_id: int
    start: datetime
    end: datetime
    state: str
    method: str | None
    joules: float | None


def _latest_reports(session: Session) -> dict[int, LatestReport]:
    rows = session.exec(select(DeviceLatest.device_id, DeviceLatest.start, DeviceLatest.end, DeviceLatest.state,
                               DeviceLatest.method, DeviceLatest.joules)).all()
    return {row[0]: LatestReport(*row) for row in rows}


def power_now(report: LatestReport | None, now: datetime, fresh: timedelta) -> float | None:
    """A device's power from its latest report, or None when that report is stale or has no energy."""
    if report is None or report.method is None or report.joules is None or now - as_utc(report.end) > fresh:
        return None
    seconds = (as_utc(report.end) - as_utc(report.start)).total_seconds()
    return report.joules / seconds if seconds > 0 else None


def _latest() -> Subquery:
    """Each device's latest report, as ingest keeps it (``DeviceLatest``): one row per device, however
    many reports are stored."""
    return select(DeviceLatest.device_id, DeviceLatest.start, DeviceLatest.end, DeviceLatest.state,
                  DeviceLatest.method, DeviceLatest.joules).subquery()


def _state_case(latest: Subquery, now: datetime, fresh_since: datetime) -> ColumnElement:
    """``device_state``'s rule, in SQL, so the database classifies the devices and returns counts."""
    shown = case({state.value: name for state, name in _STATE_NAMES.items()}, value=latest.c.state,
                 else_="unknown")
    return case((latest.c.end.is_(None), "unknown"), (latest.c.end >= fresh_since, shown),
                (latest.c.state == PowerState.SLEEP.value, "asleep"), (latest.c.end >= now - GONE_AFTER, "off"),
                else_="unknown")


def devices_and_power(session: Session, latest: Subquery, seconds: ColumnElement, now: datetime,
                      fresh_since: datetime, site_classes: set[SiteClass]) -> dict[str, dict]:
    """Devices by state and power now by method, from one pass over the latest reports: the database
    classifies each device and sums, and returns a row per site, class, state and method."""
    state = _state_case(latest, now, fresh_since)
    fresh = (latest.c.end >= fresh_since) & latest.c.method.is_not(None) & latest.c.joules.is_not(None) & (seconds > 0)
    method = case((fresh, latest.c.method), else_=None)
    rows = session.exec(
        select(Site.name, Device.device_class, state, method, func.count(),
               func.sum(case((fresh, latest.c.joules / seconds), else_=None)))
        .join(Site, col(Site.id) == col(Device.site_id)).outerjoin(latest, latest.c.device_id == col(Device.id))
        .group_by(Site.name, Device.device_class, state, method)).all()
    counts = {(site, device_class, name): 0 for site, device_class in site_classes for name in DEVICE_STATES}
    watts: dict[tuple[str, str, str], float] = defaultdict(float)
    for site, device_class, name, fresh_method, count, power in rows:
        counts[(site, device_class, name)] += count
        if fresh_method is not None:
            watts[(site, device_class, fresh_method)] += float(power or 0.0)
    return {"devices": counts, "power_watts": dict(watts)}


def per_device_power(session: Session, latest: Subquery, seconds: ColumnElement, fresh_since: datetime,
                     limit: int) -> PerDevice:
    watts = case(((latest.c.end >= fresh_since) & latest.c.joules.is_not(None) & (seconds > 0),
                  latest.c.joules / seconds), else_=0.0)
    rows = session.exec(
        select(Device.id, Device.hostname, Site.name, Device.device_class, watts)
        .join(Site, col(Site.id) == col(Device.site_id)).outerjoin(latest, latest.c.device_id == col(Device.id))
        .order_by(col(Device.id)).limit(limit)).all()
    total = session.exec(select(func.count()).select_from(Device)).one()
    return PerDevice([DevicePower(*row[:4], float(row[4] or 0.0)) for row in rows], total - len(rows))


def age_bucket(last_seen: datetime | None, now: datetime) -> str:
    if last_seen is None:
        return "never"
    silence = now - as_utc(last_seen)
    return next((label for label, bound in AGE_BUCKETS if silence < bound), "older")


def agents_by_age(session: Session, now: datetime) -> dict[tuple[str, str], int]:
    """Working (not retired) agents by how long since they last reported, per site (bucketed in SQL:
    one row per site and bucket rather than one per agent)."""
    bucket = case((col(Agent.last_seen).is_(None), "never"),
                  *((col(Agent.last_seen) > now - bound, label) for label, bound in AGE_BUCKETS), else_="older")
    rows = session.exec(select(Site.name, bucket, func.count()).join(Site, col(Site.id) == col(Agent.site_id))
                        .where(col(Agent.retired_at).is_(None)).group_by(Site.name, bucket)).all()
    counts: dict[tuple[str, str], int] = {}
    for site, label, count in rows:
        counts.update({(site, other): 0 for other in AGE_LABELS if (site, other) not in counts})
        counts[(site, label)] = count
    return counts
