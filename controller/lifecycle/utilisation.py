"""Utilisation: each device's hours in use per school week, its rooms and classes ranked, and the devices
used so little that moving them to where they are needed saves buying new ones.

**In use** is the time a device's own agent reported it ``active`` (agent.sampler.activity_state: someone
gave input within its idle threshold, or the CPU was busy); idle, asleep and off are not in use. It is the
split energy accounting already makes (controller.energy.policy_hours.is_waste: energy while active is
somebody working), read from the hourly buckets the agent's reports filled, agent methods only: an outlet
meter's hours say the socket drew power, not that anyone used the machine. Buckets outlive the reports they
came from (``hourly_retention_years``, seven by default, against ``report_retention_days``, 90), so a
term's utilisation is still there after its reports are dropped, without a table of its own.

**A school week** is a Monday-to-Sunday local week in which the device's school is open on at least one
day, by the one rule for a school day (``PolicyHours.school_day``: the device's winning policy's calendar
and hours, else weekdays other than bank holidays). A device's figure is its in-use hours in its last
``weeks`` school weeks ÷ the school days in them × 5, so a half-term or INSET week is neither dropped nor
read as a short week. The current week counts up to today; days before the device's agent first reported
do not (a device bought mid-term is not under-used for the weeks before it arrived), and a device that
never reported has no figure: no observation is not no use.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func
from sqlmodel import Session, col, select

from agent.protocol import PowerMethod, PowerState
from controller.db import in_batches
from controller.energy.inputs import load_estate
from controller.energy.policy_hours import PolicyHours
from controller.lifecycle.embodied import Factors
from controller.lifecycle.models import Asset
from controller.lifecycle.recommend import ACTIVE_STATES
from controller.lifecycle.states import State
from controller.policy.calendar import Calendar
from controller.policy.model import Policy
from controller.policy.walltime import instant
from controller.register.enrollment import site_by_name
from controller.register.models import Device, EnergyBucket, Site
from controller.timeutil import as_utc

IN_USE = PowerState.ACTIVE.value
# What the agent reported about its own activity; a meter's hours (method "metered") do not say who used it.
AGENT_METHODS = tuple(m.value for m in (PowerMethod.RAPL, PowerMethod.BATTERY, PowerMethod.MODEL))
SCHOOL_WEEK_DAYS = 5  # a full school week (DOMAIN.md: at least 32.5 hours over five days)
DEFAULT_WEEKS = 6  # half a term: long enough to see a timetable's pattern, short enough to be current
LOOKBACK_WEEKS = 26  # how far back `--weeks` may reach (a summer holiday is about six)
MOST_WEEKS = 60  # a school year and its holidays: the most weeks one figure covers (the audit pack's period)
SERVER = "server"  # servers are right-sized (controller.lifecycle.rightsize), not redeployed
HOUR_PLACES = Decimal("0.01")
WEEK = timedelta(weeks=1)


def _hours(seconds: Decimal | float) -> Decimal:
    return (Decimal(str(seconds)) / 3600).quantize(HOUR_PLACES, ROUND_HALF_UP)


@dataclass(frozen=True)
class DeviceUse:
    device_id: int
    site: str
    hostname: str
    room: str | None
    device_class: str
    school_weeks: int
    school_days: int
    in_use_hours: Decimal  # in those weeks
    hours_per_week: Decimal | None  # None: no school day observed (not seen in the window, or new)


@dataclass(frozen=True)
class GroupUse:
    rank: int  # 1: the most used
    name: str  # "Site / Room" or a device class
    devices: int
    hours_per_week: Decimal  # the mean of its devices' figures
    under: int  # devices under the threshold


@dataclass(frozen=True)
class Redeployment:
    device_id: int
    site: str
    hostname: str
    room: str | None
    device_class: str
    hours_per_week: Decimal
    embodied_kg_co2e: float | None  # a new device's embodied carbon that redeploying this one avoids
    embodied_basis: str  # "model", "class", "(override)": where the figure came from; "" when none


@dataclass(frozen=True)
class Utilisation:
    weeks: int
    under_hours: float
    devices: tuple[DeviceUse, ...]
    rooms: tuple[GroupUse, ...]
    classes: tuple[GroupUse, ...]
    redeploy: tuple[Redeployment, ...]

    @property
    def embodied_saved_kg(self) -> float:
        return round(sum(r.embodied_kg_co2e or 0.0 for r in self.redeploy), 1)


@dataclass(frozen=True)
class _Device:
    id: int
    site: str
    hostname: str
    room: str | None
    device_class: str


def school_weeks(hours: PolicyHours, device, today: date, since: date, weeks: int) -> list[tuple[date, int]]:
    """The device's last ``weeks`` school weeks up to ``today``, counting days from ``since``: (Monday,
    school days counted in it)."""
    found: list[tuple[date, int]] = []
    monday = today - timedelta(days=today.weekday())
    for _ in range(MOST_WEEKS * 2):
        if len(found) == weeks or monday + timedelta(days=6) < since:
            break
        days = [monday + timedelta(days=i) for i in range(7)]
        school = sum(1 for d in days if since <= d <= today and hours.school_day(device, d))
        if school:
            found.append((monday, school))
        monday -= WEEK
    return found


def in_use_seconds(session: Session, device_ids: Sequence[int], since: datetime,
                   until: datetime) -> dict[int, list[tuple[datetime, float]]]:
    """Per device, (UTC hour, seconds in use) for the hours in [since, until): the one reading of in use."""
    found: dict[int, list[tuple[datetime, float]]] = defaultdict(list)
    for batch in in_batches(device_ids):
        for device_id, hour, seconds in session.exec(
                select(EnergyBucket.device_id, EnergyBucket.hour, func.sum(EnergyBucket.seconds))
                .where(col(EnergyBucket.device_id).in_(list(batch)), EnergyBucket.state == IN_USE,
                       col(EnergyBucket.method).in_(AGENT_METHODS), EnergyBucket.hour >= since,
                       EnergyBucket.hour < until)
                .group_by(EnergyBucket.device_id, EnergyBucket.hour)):
            found[device_id].append((as_utc(hour), float(seconds or 0.0)))
    return found


def first_reported(session: Session, device_ids: Sequence[int]) -> dict[int, datetime]:
    """Each device's first hour its agent reported anything in."""
    return {device_id: as_utc(hour) for batch in in_batches(device_ids) for device_id, hour in session.exec(
        select(EnergyBucket.device_id, func.min(EnergyBucket.hour))
        .where(col(EnergyBucket.device_id).in_(list(batch)), col(EnergyBucket.method).in_(AGENT_METHODS))
        .group_by(EnergyBucket.device_id))}


def _devices(session: Session, site: str | None, site_ids: Iterable[int] | None) -> list[_Device]:
    query = (select(Device, Site.name, Asset.state).join(Site, col(Site.id) == Device.site_id)
             .join(Asset, col(Asset.device_id) == Device.id, isouter=True))
    if site is not None:
        query = query.where(Site.name == site)
    if site_ids is not None:
        query = query.where(col(Device.site_id).in_(list(site_ids)))
    return [_Device(d.id, name, d.hostname, d.room, d.device_class)
            for d, name, state in session.exec(query.order_by(Site.name, Device.hostname, Device.id))
            if d.device_class != SERVER and (state or State.DEPLOYED.value) in ACTIVE_STATES]


def measure(session: Session, now: datetime, weeks: int = DEFAULT_WEEKS, site: str | None = None,
            policies: Sequence[Policy] = (), calendars: Mapping[str, Calendar] | None = None,
            site_ids: Iterable[int] | None = None, since: date | None = None,
            until: date | None = None) -> list[DeviceUse]:
    """Each device in service's hours in use per school week up to ``now`` (servers and devices out of
    service apart); ``since`` and ``until`` (local dates, inclusive) bound the days too, as a report's
    period does."""
    devices = _devices(session, site, site_ids)
    if not devices:
        return []
    estate = load_estate(session, device_ids=[d.id for d in devices])
    policy_hours = PolicyHours(estate, policies, calendars)
    first = first_reported(session, [d.id for d in devices])
    plans: dict[int, list[tuple[date, int]]] = {}
    starts: dict[int, date] = {}
    earliest = as_utc(now)
    for d in devices:
        info = estate.devices[d.id]
        zone = estate.sites[info.site_id].zone
        today = min(as_utc(now).astimezone(zone).date(), until or date.max)
        if d.id not in first:
            plans[d.id] = []
            continue
        start = starts[d.id] = max(first[d.id].astimezone(zone).date(), since or date.min)
        plans[d.id] = school_weeks(policy_hours, info, today, start, weeks)
        if plans[d.id]:
            earliest = min(earliest, instant(plans[d.id][-1][0], datetime.min.time(), zone).astimezone(UTC))
    used = in_use_seconds(session, [d.id for d in devices], earliest, as_utc(now))
    found = []
    for d in devices:
        zone = estate.sites[estate.devices[d.id].site_id].zone
        plan = plans[d.id]
        mondays = {monday for monday, _ in plan}
        seconds = sum((Decimal(str(s)) for hour, s in used.get(d.id, ())
                       if starts[d.id] <= (local := hour.astimezone(zone).date()) <= (until or date.max)
                       and local - timedelta(days=local.weekday()) in mondays), Decimal(0))
        school_days = sum(n for _, n in plan)
        per_week = (_hours(seconds * SCHOOL_WEEK_DAYS / school_days)) if school_days else None
        found.append(DeviceUse(d.id, d.site, d.hostname, d.room, d.device_class, len(plan), school_days,
                               _hours(seconds), per_week))
    return found


def _ranked(groups: Mapping[str, list[DeviceUse]], under: float) -> tuple[GroupUse, ...]:
    means = {name: (sum((u.hours_per_week for u in members), Decimal(0)) / len(members)).quantize(
        HOUR_PLACES, ROUND_HALF_UP) for name, members in groups.items()}
    order = sorted(groups, key=lambda name: (-means[name], name))
    return tuple(GroupUse(i, name, len(groups[name]), means[name],
                          sum(1 for u in groups[name] if u.hours_per_week < Decimal(str(under))))
                 for i, name in enumerate(order, start=1))


def summarise(uses: Sequence[DeviceUse], factors: Factors, under: float, weeks: int,
              models: Mapping[int, tuple[str | None, str | None]]) -> Utilisation:
    """Rooms and classes ranked by mean hours in use per school week (devices with a figure), and every
    device under ``under`` hours proposed for redeployment with the embodied carbon of the new device
    it saves buying (its own model's figure where published, else its class's)."""
    measured = [u for u in uses if u.hours_per_week is not None]
    rooms: dict[str, list[DeviceUse]] = defaultdict(list)
    classes: dict[str, list[DeviceUse]] = defaultdict(list)
    for use in measured:
        rooms[f"{use.site} / {use.room or '(no room)'}"].append(use)
        classes[use.device_class].append(use)
    redeploy = []
    for use in sorted(measured, key=lambda u: (u.hours_per_week, u.site, u.hostname)):
        if use.hours_per_week >= Decimal(str(under)):
            continue
        vendor, model = models.get(use.device_id, (None, None))
        figure = factors.lookup(use.device_class, vendor, model)
        redeploy.append(Redeployment(use.device_id, use.site, use.hostname, use.room, use.device_class,
                                     use.hours_per_week, figure.kg_co2e if figure else None,
                                     figure.basis if figure else ""))
    return Utilisation(weeks, under, tuple(uses), _ranked(rooms, under), _ranked(classes, under), tuple(redeploy))


def utilisation(session: Session, factors: Factors, now: datetime, under: float, weeks: int = DEFAULT_WEEKS,
                site: str | None = None, policies: Sequence[Policy] = (),
                calendars: Mapping[str, Calendar] | None = None,
                site_ids: Iterable[int] | None = None, since: date | None = None,
                until: date | None = None) -> Utilisation:
    """What `caretaker lifecycle utilisation`, the console and the audit pack show."""
    if site is not None:
        site_by_name(session, site)  # a misspelt site is an error, not an empty estate
    uses = measure(session, now, weeks, site, policies, calendars, site_ids, since, until)
    models = {device_id: (vendor, model) for batch in in_batches([u.device_id for u in uses])
              for device_id, vendor, model in session.exec(
                  select(Device.id, Device.vendor, Device.model).where(col(Device.id).in_(list(batch))))}
    return summarise(uses, factors, under, weeks, models)
