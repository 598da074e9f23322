"""Daily rollups: a device's settled UTC days summed once, so a year is read as days, not hours.

**What a rollup row holds.** ``energy_day`` keeps, per device, UTC day, state and method, the *amounts*
of controller.energy.lines (joules as reported and seconds, with their kind: reported, overridden by a
meter, silence attributed), never Wh. The Wh of silence and of screens follow from the device's profile,
which its own measurements keep calibrating and a catalogue edit changes; applying those rules to the
summed amounts when a question is asked (``DeviceLines.lines``, linear in seconds and joules) keeps a
rolled-up day equal to its hours, and keeps the rules in one place. Metered-wins and the attribution of
silence (which depend only on what was reported) are applied before the sum.

**Which hours a row holds, and why prices stay exact.** A row sums the hours of its day that price
alike: the same p/kWh and the same carbon factor year (bit h of ``hours`` is the day's UTC hour h).
Under a flat tariff that is the whole day; under a day/night tariff two rows, one per band; a band edge
at half past makes its hour a row of its own (its price is the mean of both bands). A time-of-use band
is therefore never averaged away: the row's kWh are priced at the one rate all its hours share.
The grouping is made with the tariffs of roll time, but prices are read with today's: each UTC day's
24 hours are priced afresh (``DayPrices``), a row is used only when every hour in it still prices
alike, and otherwise that site's days of that kind are read from hours. So a price change needs no
re-roll, and a band's times edited after the fact cost speed, never accuracy. Carbon is the factor of
the hour's local year, part of the same key, so a UTC day across a local New Year splits. Half-hourly
grid intensity (controller.energy.intensity) places maintenance only and is not in any total; should it
ever be, it joins the key as a band does.

**Which questions read which level.** Whole UTC days that the rollup reaches are read from it; the
edges of a period (a local day in summer starts at 23:00 UTC), the days since the last roll, and the
days a late report re-opened are read from hours, through the same lines. Hour-of-day questions read
hours throughout: grouping by hour, by local day, or by policy part (school hours, kept on by policy),
whose labels change within a day. UTC days rather than local ones: a device-day then means the same
whatever site the device moves to and whatever zone its site is given.

**Late reports.** Ingest (and SNMP metering) call ``reopen`` in the transaction that writes a bucket
of a day before today: the device is marked from that day, readers take its days from there out of
hours, and the rollup job (controller.energy.rolling) rolls them again and clears the mark, unless it
moved meanwhile (``version``). A spool flushed after a week offline re-rolls one device's week.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import bindparam, case, func
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import Insert
from sqlmodel import Session, select

from controller.db import BulkUpsert, in_batches, prepared
from controller.energy.inputs import DeviceInfo, Estate
from controller.energy.lines import (
    HOUR,
    DeviceHours,
    DeviceLines,
    Kind,
    Memo,
    hour_ceil,
    iter_device_hours,
    monitor_watts,
)
from controller.energy.models import EnergyDay, EnergyMonth, RollupMark
from controller.energy.rolled import day_start, marks, rolled_through
from controller.energy.tariff import tariff_at
from controller.timeutil import as_utc, hour_floor, utcnow

DAY = timedelta(days=1)
# What one hour of a site costs and emits: (p/kWh or None, carbon factor year), from the accounting's Pricer.
Price = Callable[[int, datetime], Hashable]


def day_of(moment: datetime) -> date:
    return as_utc(moment).date()


def bits(mask: int) -> list[int]:
    return [h for h in range(24) if mask >> h & 1]


def masks(signature: Sequence[Hashable]) -> list[int]:
    """The day's hours grouped by price: one bit mask per distinct price, in the order first met."""
    found: dict[Hashable, int] = {}
    for h, price in enumerate(signature):
        found[price] = found.get(price, 0) | 1 << h
    return list(found.values())


class DayPrices:
    """Each site's UTC day as the prices of its 24 hours. Worked out once per kind of day: days with the
    same tariff all day, the same weekday and the same UTC offset and local year at both ends price
    their hours alike, so a year of a site is a handful of signatures, not 8,760 prices."""

    def __init__(self, estate: Estate, price: Price) -> None:
        self._estate = estate
        self._price = price
        self._kinds: dict[tuple, tuple[Hashable, ...]] = {}

    def signature(self, site_id: int, day: date) -> tuple[Hashable, ...]:
        start = day_start(day)
        last = start + 23 * HOUR
        zone = self._estate.sites[site_id].zone
        specs = self._estate.tariffs.get(site_id, [])
        first_spec, last_spec = tariff_at(specs, start), tariff_at(specs, last + HOUR - timedelta(microseconds=1))
        a, b = start.astimezone(zone), last.astimezone(zone)
        plain = first_spec is last_spec and a.utcoffset() == b.utcoffset() and a.year == b.year
        key = (site_id, id(first_spec), a.weekday(), a.utcoffset(), a.year)
        if plain and key in self._kinds:
            return self._kinds[key]
        found = tuple(self._price(site_id, start + h * HOUR) for h in range(24))
        if plain:
            self._kinds[key] = found
        return found


def reopen(session: Session, earliest: Mapping[int, datetime], now: datetime) -> None:
    """In the transaction that changed buckets: mark each device whose earliest changed hour is on a day
    before today (UTC), so its rolled days from there are read from hours until rolled again."""
    today = day_of(now)
    rows = sorted((device_id, day_of(hour)) for device_id, hour in earliest.items() if day_of(hour) < today)
    if not rows:
        return
    statement, bulk = prepared(session, _mark_upsert)  # one statement (late reports: many rows)
    session.execute(statement, bulk.params([{"device_id": d, "from_day": day, "version": 1} for d, day in rows]))


def _mark_upsert(dialect: Dialect) -> tuple[Insert, BulkUpsert]:
    table = RollupMark.__table__
    bulk = BulkUpsert(dialect, table, ("device_id", "from_day", "version"))
    insert = bulk.statement
    earlier = func.least if dialect.name == "postgresql" else func.min
    return insert.on_conflict_do_update(
        index_elements=["device_id"],
        set_={"from_day": earlier(table.c.from_day, insert.excluded.from_day), "version": table.c.version + 1}), bulk


def summed(value: float | Decimal, memo: Memo) -> Decimal:
    """A rolled sum as a Decimal: PostgreSQL's NUMERIC sum is exact already (the sum of the hours' exact
    decimals, to the last digit); SQLite's is a float, read as its shortest decimal, as a bucket is."""
    return value if isinstance(value, Decimal) else memo.decimal(value)


def _uniform(signature: Sequence[Hashable], mask: int) -> bool:
    hours = bits(mask)
    return all(signature[h] == signature[hours[0]] for h in hours[1:])


def _day_rows(session: Session, ids: list[int], days: list[date]) -> list[tuple]:
    """Per device and hours mask, the amounts summed over ``days``, by state, method and kind."""
    table = EnergyDay.__table__
    statement = (select(table.c.device_id, table.c.hours, table.c.state, table.c.method, table.c.kind,
                        func.sum(table.c.joules), func.sum(table.c.seconds))
                 .where(table.c.device_id.in_(bindparam("ids", expanding=True)),
                        table.c.day.in_(bindparam("days", expanding=True)))
                 .group_by(table.c.device_id, table.c.hours, table.c.state, table.c.method, table.c.kind))
    found = []
    for batch in in_batches(ids):
        result = session.connection().execute(statement, {"ids": list(batch), "days": days})
        found.extend(result.cursor.fetchall())
        result.close()
    return found


def month_of(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return (month + timedelta(days=32)).replace(day=1)


def month_days(month: date, mask: int) -> list[date]:
    return [month + timedelta(days=d) for d in range(31) if mask >> d & 1]


def _by_site(devices: Iterable[DeviceInfo]) -> dict[int, list[DeviceInfo]]:
    by_site: dict[int, list[DeviceInfo]] = defaultdict(list)
    for device in devices:
        by_site[device.site_id].append(device)
    return by_site


def _line_sets(members: Sequence[DeviceInfo], amounts: Mapping[tuple[int, Hashable], list], rep: Mapping,
               screens: Mapping[str, Decimal], memo: Memo) -> Iterator[DeviceHours]:
    """Each device's summed amounts as one line set per kind of hour, dated at a representative hour."""
    workers = {device.id: DeviceLines(device, screens, memo) for device in members}
    per_device: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for (device_id, key), found in amounts.items():
        tid = memo.template_id(workers[device_id].lines(sorted(found)))
        per_device[device_id].append((rep[key], tid))
    for device in members:
        if device.id in per_device:
            yield DeviceHours(device, per_device[device.id], memo.templates)


def _days_hours(session: Session, estate: Estate, devices: Sequence[DeviceInfo], days: Sequence[date],
                prices: DayPrices, memo: Memo, now: datetime) -> Iterator[DeviceHours]:
    """``devices``' rolled ``days`` from the daily rollup, one site at a time: per kind of day, one summed
    query, each hours mask a line set priced at one of its hours (all alike, ``_uniform``)."""
    screens = monitor_watts(estate)
    for site_id, members in _by_site(devices).items():
        kinds: dict[tuple[Hashable, ...], list[date]] = defaultdict(list)
        for day in days:
            kinds[prices.signature(site_id, day)].append(day)
        for signature, of_kind in kinds.items():
            rows = _day_rows(session, [d.id for d in members], of_kind)
            if not all(_uniform(signature, row[1]) for row in rows):
                for day in of_kind:  # a band's times were edited since the roll: these days from hours
                    yield from iter_device_hours(session, estate, day_start(day), day_start(day) + DAY, now,
                                                 memo, members)
                continue
            amounts: dict[tuple[int, int], list] = defaultdict(list)
            for device_id, mask, state, method, kind, joules, seconds in rows:
                amounts[device_id, mask].append((state, method, Kind(kind), summed(seconds, memo),
                                                 summed(joules, memo)))
            base = day_start(of_kind[0])
            rep = {mask: base + bits(mask)[0] * HOUR for _, mask in amounts}
            yield from _line_sets(members, amounts, rep, screens, memo)


def month_groups(prices: DayPrices, site_id: int, month: date) -> dict[tuple[Hashable, ...], int]:
    """The month's days grouped as the rollup job groups them: by the prices of their hours (a mask each)."""
    groups: dict[tuple[Hashable, ...], int] = {}
    day = month
    while day.month == month.month:
        signature = prices.signature(site_id, day)
        groups[signature] = groups.get(signature, 0) | 1 << (day.day - 1)
        day += DAY
    return groups


def _month_rows(session: Session, ids: list[int], first: date, last: date,
                classes: Mapping[tuple[date, int], int]) -> list[tuple]:
    """Per device, kind of day (``classes``: its month and days mask; None for a grouping that no longer
    holds) and hours mask, the amounts of the whole months [first, last), summed in the database."""
    table = EnergyMonth.__table__
    kind_of_day = case(*(((table.c.month == month) & (table.c.days == days), kind)
                         for (month, days), kind in classes.items()), else_=None)
    statement = (select(table.c.device_id, kind_of_day, table.c.hours, table.c.state, table.c.method,
                        table.c.kind, func.sum(table.c.joules), func.sum(table.c.seconds))
                 .where(table.c.device_id.in_(bindparam("ids", expanding=True)), table.c.month >= first,
                        table.c.month < last)
                 .group_by(table.c.device_id, kind_of_day, table.c.hours, table.c.state, table.c.method,
                           table.c.kind))
    found = []
    for batch in in_batches(ids):
        result = session.connection().execute(statement, {"ids": list(batch)})
        found.extend(result.cursor.fetchall())
        result.close()
    return found


def _unmatched(session: Session, ids: list[int], first: date, last: date,
               classes: Mapping[tuple[date, int], int]) -> list[date]:
    """The days of month rows grouped otherwise than today's prices group them (a band's times edited)."""
    table = EnergyMonth.__table__
    found = set()
    for batch in in_batches(ids):
        for month, days in session.execute(select(table.c.month, table.c.days).distinct().where(
                table.c.device_id.in_(list(batch)), table.c.month >= first, table.c.month < last)):
            month = month if isinstance(month, date) else date.fromisoformat(month)
            if (month, days) not in classes:
                found.update(month_days(month, days))
    return sorted(found)


def _months_hours(session: Session, estate: Estate, devices: Sequence[DeviceInfo], first: date, last: date,
                  prices: DayPrices, memo: Memo, now: datetime) -> Iterator[DeviceHours]:
    """``devices``' whole months [first, last) from the monthly rollup, summed in the database by kind of
    day: the days of a month that price alike, as the job grouped them, must still do so (checked by
    regrouping them with today's prices), and each hours mask must still price alike within them; the
    days where either fails are read as days."""
    screens = monitor_watts(estate)
    for site_id, members in _by_site(devices).items():
        signatures: dict[tuple[Hashable, ...], int] = {}
        classes: dict[tuple[date, int], int] = {}
        first_day: dict[int, date] = {}
        month = first
        while month < last:
            for signature, days in month_groups(prices, site_id, month).items():
                kind = signatures.setdefault(signature, len(signatures))
                classes[month, days] = kind
                first_day.setdefault(kind, month_days(month, days)[0])
            month = next_month(month)
        by_kind = {kind: signature for signature, kind in signatures.items()}
        ids = [d.id for d in members]
        rows = _month_rows(session, ids, first, last, classes)
        spoilt = {kind for kind, hours in {(row[1], row[2]) for row in rows}
                  if kind is not None and not _uniform(by_kind[kind], hours)}
        stale = [] if all(row[1] is not None for row in rows) else _unmatched(session, ids, first, last, classes)
        stale += [day for (month, days), kind in classes.items() if kind in spoilt for day in month_days(month, days)]
        amounts: dict[tuple[int, Hashable], list] = defaultdict(list)
        rep: dict[Hashable, datetime] = {}
        for device_id, kind, hours, state, method, kind_of_amount, joules, seconds in rows:
            if kind is None or kind in spoilt:
                continue
            if (kind, hours) not in rep:
                rep[kind, hours] = day_start(first_day[kind]) + bits(hours)[0] * HOUR
            amounts[device_id, (kind, hours)].append((state, method, Kind(kind_of_amount), summed(seconds, memo),
                                                      summed(joules, memo)))
        yield from _line_sets(members, amounts, rep, screens, memo)
        if stale:
            yield from _days_hours(session, estate, members, sorted(set(stale)), prices, memo, now)


def _rolled_hours(session: Session, estate: Estate, devices: Sequence[DeviceInfo], first: date, stop: date,
                  prices: DayPrices, memo: Memo, now: datetime) -> Iterator[DeviceHours]:
    """Rolled days [first, stop): whole calendar months from the monthly rollup, the days around them
    from the daily one."""
    m_first = first if first == month_of(first) else next_month(first)
    m_last = month_of(stop)
    if m_first >= m_last:
        yield from _days_hours(session, estate, devices, _days(first, stop), prices, memo, now)
        return
    if first < m_first:
        yield from _days_hours(session, estate, devices, _days(first, m_first), prices, memo, now)
    yield from _months_hours(session, estate, devices, m_first, m_last, prices, memo, now)
    if m_last < stop:
        yield from _days_hours(session, estate, devices, _days(m_last, stop), prices, memo, now)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days)]


def iter_hours(session: Session, estate: Estate, start: datetime, end: datetime, now: datetime | None,
               price: Price) -> Iterator[DeviceHours]:
    """The estate's hours over the whole UTC hours covering [start, end), attributing silence up to
    ``now``, as ``iter_device_hours`` gives them, with the rolled-up whole days read as days (a summed
    line set per hours mask) and whole months as months: the same sums, read from a row per device-day
    or device-month instead of 24 or 720.

    ``price`` names what an hour costs (``Pricer``'s rate and carbon year): hours summed into one line
    set must share it."""
    now = as_utc(now or utcnow())
    until = min(as_utc(end), now)
    start = hour_floor(start)
    memo = Memo(estate.catalogue.rapl_wall_factor)
    through = rolled_through(session) if estate.devices else None
    first = day_of(start) if start == day_start(day_of(start)) else day_of(start) + DAY
    last = min(day_of(until), through) if through is not None else first
    if last <= first:
        yield from iter_device_hours(session, estate, start, end, now, memo)
        return
    marked = marks(session, estate.devices)
    spans: dict[date, list[DeviceInfo]] = defaultdict(list)
    for device in estate.devices.values():
        spans[max(first, min(last, marked.get(device.id, last)))].append(device)
    prices = DayPrices(estate, price)
    for stop, devices in spans.items():
        if start < day_start(first):
            yield from iter_device_hours(session, estate, start, day_start(first), now, memo, devices)
        if first < stop:
            yield from _rolled_hours(session, estate, devices, first, stop, prices, memo, now)
        if day_start(stop) < hour_ceil(until):
            yield from iter_device_hours(session, estate, day_start(stop), end, now, memo, devices)
