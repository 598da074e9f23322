"""The rollup job: settled UTC days rolled into ``energy_day`` (the reasoning is in controller.energy.rollup).

A day is settled once its last reports are in: ``FRESH_INTERVALS`` report intervals after midnight UTC,
as /metrics settles hours. Each run rolls every device's days from the last run's ``through`` up to the
last settled day, and rolls again the days of the devices a late report marked, from the marked day.
It runs as a singleton job (controller.jobs), on one replica at a time; it is also safe to run twice,
since a device's days are replaced, never added to, and the marks it clears are the versions it read.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, func, insert, or_
from sqlmodel import Session, col, select

from controller.energy import carbon, catalogue
from controller.energy.accounting import Pricer
from controller.energy.inputs import Estate, SiteInfo
from controller.energy.lines import CHUNK, Memo, iter_walks
from controller.energy.models import EnergyDay, EnergyMonth, RollupMark, RollupState
from controller.energy.rolled import STATE, day_start, rolled_through
from controller.energy.rollup import DayPrices, day_of, masks, month_days, month_groups, month_of, next_month
from controller.energy.tariff import tariffs_for
from controller.register.models import Device, EnergyBucket, Site
from controller.timeutil import as_utc

FRESH_INTERVALS = 2  # as controller.estate.summary settles an hour


@dataclass(frozen=True)
class Rolled:
    """What one run did: the days it reached, and how many device-days and rows it wrote."""

    through: date | None
    devices: int
    device_days: int
    rows: int
    remarked: int  # marked devices whose earlier days it rolled again

    def details(self) -> dict:
        return {"through": self.through.isoformat() if self.through else None, "devices": self.devices,
                "device_days": self.device_days, "rows": self.rows, "remarked": self.remarked}


def settled(now: datetime, report_interval_seconds: int) -> date:
    """Days before this one are settled: their last reports are in."""
    return day_of(as_utc(now) - timedelta(seconds=FRESH_INTERVALS * report_interval_seconds))


def pricing_estate(session: Session) -> Estate:
    """What prices an hour (sites' zones, tariffs, carbon factors): all the roll needs besides buckets."""
    sites = {s.id: SiteInfo(s.id, s.name, ZoneInfo(s.timezone), s.trust, s.postcode)
             for s in session.exec(select(Site))}
    return Estate(sites, {}, catalogue.load(session), carbon.load(session), tariffs_for(session, sites))


def roll(session: Session, now: datetime, report_interval_seconds: int = 300) -> Rolled:
    """Roll what is settled and not yet rolled, and what late reports re-opened; the caller commits."""
    target = settled(now, report_interval_seconds)
    through = rolled_through(session)
    if through is None:
        earliest = session.exec(select(func.min(EnergyBucket.hour))).one()
        if earliest is None:  # nothing to roll yet: the first roll starts from the first bucket
            return Rolled(None, 0, 0, 0, 0)
        through = min(day_of(as_utc(earliest)), target)
    read_marks = {d: (day, version) for d, day, version in session.exec(
        select(RollupMark.device_id, RollupMark.from_day, RollupMark.version)).all()}
    estate = pricing_estate(session)
    pricer = Pricer(estate)
    prices = DayPrices(estate, lambda site_id, hour: (pricer.rate(site_id, hour), pricer.factor(site_id, hour).year))
    spans: dict[date, list[tuple[int, int]]] = defaultdict(list)
    for device_id, site_id in session.exec(select(Device.id, Device.site_id)).all():
        marked = read_marks.get(device_id)
        begin = min(through, marked[0]) if marked else through
        if begin < target:
            spans[begin].append((device_id, site_id))
    devices = device_days = rows = 0
    for begin, members in sorted(spans.items()):
        for i in range(0, len(members), CHUNK):
            chunk = dict(members[i:i + CHUNK])
            written, days = _roll_devices(session, chunk, begin, target, prices)
            written += roll_months(session, chunk, begin, target, prices)
            devices, device_days, rows = devices + len(chunk), device_days + days, rows + written
    state = session.get(RollupState, STATE) or RollupState(name=STATE, through=target)
    state.through, state.updated_at = max(target, state.through), as_utc(now)
    session.add(state)
    _clear(session, read_marks)
    remarked = sum(1 for day, _ in read_marks.values() if day < through)
    return Rolled(target, devices, device_days, rows, remarked)


def _roll_devices(session: Session, sites: dict[int, int], begin: date, end: date,
                  prices: DayPrices) -> tuple[int, int]:
    """Replace these devices' rows from ``begin`` with their days [begin, end) worked out afresh."""
    session.execute(delete(EnergyDay).where(col(EnergyDay.device_id).in_(list(sites)), col(EnergyDay.day) >= begin))
    memo = Memo(Decimal(1))  # amounts only: no line of the roll is priced or converted to Wh
    exact = session.get_bind().dialect.name == "postgresql"
    hour_masks: dict[tuple[int, date], list[int]] = {}
    rows: list[dict] = []
    device_days = 0
    for device_id, walked in iter_walks(session, list(sites), day_start(begin), day_start(end), memo):
        site_id = sites[device_id]
        counted: Counter[tuple[date, int, int]] = Counter()
        for hour, aid in walked:
            day = hour.date()
            of_day = hour_masks.get((site_id, day))
            if of_day is None:
                of_day = hour_masks[site_id, day] = _hour_masks(prices.signature(site_id, day))
            counted[day, of_day[hour.hour], aid] += 1
        sums: dict[tuple[date, int, str, str, str], list[Decimal]] = {}
        for (day, mask, aid), n in counted.items():
            for state, method, kind, seconds, joules in memo.amounts[aid]:
                found = sums.setdefault((day, mask, state, method, kind.value), [Decimal(0), Decimal(0)])
                found[0] += joules * n
                found[1] += seconds * n
        device_days += len({key[0] for key in sums})
        rows.extend({"device_id": device_id, "day": day, "hours": mask, "state": state, "method": method,
                     "kind": kind, "joules": stored(joules, exact), "seconds": stored(seconds, exact)}
                    for (day, mask, state, method, kind), (joules, seconds) in sums.items())
    if rows:
        session.execute(insert(EnergyDay), rows)
    return len(rows), device_days


def roll_months(session: Session, sites: dict[int, int], begin: date, end: date, prices: DayPrices) -> int:
    """Sum these devices' rolled days again by calendar month, for every whole month that changed: days
    [begin, end) were rolled, so the months from ``begin``'s up to the last one ending by ``end``. Days of a
    month that price alike (the same signature) share a row, as hours of a day do."""
    first, written = month_of(begin), 0
    months = []
    while next_month(first) <= end:
        months.append(first)
        first = next_month(first)
    if not months:
        return 0
    ids = list(sites)
    session.execute(delete(EnergyMonth).where(col(EnergyMonth.device_id).in_(ids),
                                              col(EnergyMonth.month) >= months[0]))
    day_groups: dict[tuple[int, date], int] = {}  # (site, day) → the mask of its month's days priced alike
    for site_id in set(sites.values()):
        for month in months:
            for days in month_groups(prices, site_id, month).values():
                for day in month_days(month, days):
                    day_groups[site_id, day] = days
    table = EnergyDay.__table__
    result = session.connection().execute(
        select(table.c.device_id, table.c.day, table.c.hours, table.c.state, table.c.method, table.c.kind,
               table.c.joules, table.c.seconds)
        .where(table.c.device_id.in_(ids), table.c.day >= months[0], table.c.day < next_month(months[-1])))
    sums: dict[tuple, list] = {}
    for device_id, day, hours, state, method, kind, joules, seconds in result:
        day = day if isinstance(day, date) else date.fromisoformat(day)
        key = (device_id, month_of(day), day_groups[sites[device_id], day], hours, state, method, kind)
        found = sums.setdefault(key, [Decimal(0), Decimal(0)])
        found[0] += joules if isinstance(joules, Decimal) else Decimal(repr(joules))
        found[1] += seconds if isinstance(seconds, Decimal) else Decimal(repr(seconds))
    exact = session.get_bind().dialect.name == "postgresql"
    rows = [{"device_id": k[0], "month": k[1], "days": k[2], "hours": k[3], "state": k[4], "method": k[5],
             "kind": k[6], "joules": stored(j, exact), "seconds": stored(s, exact)} for k, (j, s) in sums.items()]
    for i in range(0, len(rows), 20_000):
        session.execute(insert(EnergyMonth), rows[i:i + 20_000])
        written += len(rows[i:i + 20_000])
    return written


def stored(value: Decimal, exact: bool) -> Decimal | float:
    """What the amount columns take: the exact Decimal (PostgreSQL NUMERIC), or a float (SQLite has none)."""
    return value if exact else float(value)


def _hour_masks(signature) -> list[int]:
    """For each of the day's 24 hours, the mask of the hours it prices alike with."""
    out = [0] * 24
    for mask in masks(signature):
        for h in range(24):
            if mask >> h & 1:
                out[h] = mask
    return out


def _clear(session: Session, read: dict[int, tuple[date, int]]) -> None:
    """Remove the marks this run answered: those still at the version read (a moved mark stays)."""
    items: Iterable[tuple[int, tuple[date, int]]] = sorted(read.items())
    pairs = list(items)
    for i in range(0, len(pairs), 500):
        batch = pairs[i:i + 500]
        session.execute(delete(RollupMark).where(or_(*(and_(col(RollupMark.device_id) == d,
                                                             col(RollupMark.version) == v)
                                                       for d, (_, v) in batch))))
