"""Device-hours as accounting sees them: the buckets to trust, plus the time nobody reported.

Three rules turn stored buckets into the lines every figure is summed from:

- **Metered wins the hour.** When an outlet meter (PDU, PoE) reported a device-hour, its rows are the
  device's energy for that hour and the agent's RAPL/battery/model rows for it are ignored, so the
  same hour is never counted twice.
- **RAPL is corrected to the wall** with the catalogue's platform factor (RAPL sees CPU and DRAM only).
- **Silence is attributed, not dropped.** Seconds of an hour nobody reported, from the device's first
  report until the end of the range (or now), are attributed to ``sleep`` when the last thing heard
  was sleep and to ``off`` otherwise (an agent that stops reporting while awake was shut down or lost
  power), at the profile's watts, with method ``attributed``. Computed at query time rather than
  stored: a late report (a spool flushed after a week offline) then simply replaces the attribution,
  with nothing to undo.

A device counted with monitors gets a line per monitor per state at the monitor's catalogue watts
(screen on while the PC is awake), except in metered hours, where the outlet fed the whole desk.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from itertools import groupby, repeat
from operator import itemgetter
from typing import NamedTuple

from sqlalchemy import exists, func
from sqlmodel import Session, col, select

from controller.energy.inputs import DeviceInfo, Estate
from controller.register.models import EnergyBucket
from controller.timeutil import as_utc, hour_floor, utcnow

HOUR = timedelta(hours=1)
ATTRIBUTED = "attributed"
METERED = "metered"
AWAKE = ("active", "idle")
# Reports are spread over hours in floating point; less unreported time than this is rounding, not silence.
GAP_TOLERANCE_SECONDS = Decimal(1)
_ZERO = Decimal(0)
_FULL = Decimal(3600)
# Devices read and worked out at a time: bounds the buckets held in memory (a year is 8,760 hours each).
CHUNK = 200


class HourLine(NamedTuple):
    """A NamedTuple: an estate-month makes millions of these, and a tuple is the cheapest to build."""

    device_id: int
    hour: datetime  # UTC, start of the hour
    state: str
    method: str  # metered, rapl, battery, model, attributed
    seconds: Decimal  # the device's time in this state (0 for a monitor's line: that time is the PC's)
    wh: Decimal


def hour_ceil(value: datetime) -> datetime:
    floor = hour_floor(value)
    return floor if floor == as_utc(value) else floor + HOUR


def gap_state(states: Iterable[str]) -> str:
    """What a device is taken to be doing after the hour these states were last heard in."""
    heard = states if isinstance(states, list | tuple) else list(states)
    return "sleep" if "sleep" in heard and "off" not in heard else "off"


# A stored bucket as the driver returns it: (device_id, hour as stored, state, method, joules, seconds).
Row = tuple[int, object, str, str, float, float]


def trusted(rows: Sequence[Row]) -> Sequence[Row]:
    """A device-hour's buckets to account: only the metered ones once an outlet meter reported the hour."""
    metered = [row for row in rows if row[3] == METERED]
    return metered or rows


# An hour's lines bar the device and the hour: (state, method, seconds, wh) each.
Template = tuple[tuple[str, str, Decimal, Decimal], ...]


class Kind(StrEnum):
    """What an amount is: what was reported, or the silence in between. A rollup keeps amounts, never Wh,
    so a device's calibration or a catalogue edit reaches its rolled-up days exactly as it reaches hours."""

    REPORTED = "reported"  # a bucket accounted as stored; a monitor line beside it unless metered
    OVERRIDDEN = "overridden"  # a bucket a meter's reading replaced in its hour: calibration only
    SILENT = "silent"  # silence attributed to the last state heard, screens with the PC
    SILENT_METERED = "silent_metered"  # silence in an hour a meter reported: the outlet fed the desk


# An hour's amounts, whatever the device: (state, method, kind, seconds, joules as stored) each.
Amount = tuple[str, str, Kind, Decimal, Decimal]
Amounts = tuple[Amount, ...]


class Memo:
    """Each distinct conversion, product and hour's amounts and lines worked out once per query. An estate
    repeats the same few figures (an hour, a model hour of the same class, a full silent hour, a monitor's
    hour) millions of times, and Decimal division is most of the cost of a line. A cached result is equal
    in value to the one the arithmetic would have made afresh (Decimals equal in value may differ in
    trailing zeros, which no rounded figure shows)."""

    def __init__(self, rapl_factor: Decimal) -> None:
        self.rapl_factor = rapl_factor
        self.hours: dict[object, datetime] = {}
        self.walks: dict[tuple[datetime, datetime], list[datetime]] = {}
        self.exact: dict[float, Decimal] = {}
        self.draw: dict[tuple[Decimal, Decimal], Decimal] = {}
        self.whole: dict[tuple[object, str | None], tuple[int, str | None]] = {}  # a whole hour's kind → amounts
        self.amount_ids: dict[Amounts, int] = {}
        self.amounts: list[Amounts] = []  # by id, shared by every device of the query
        self.template_ids: dict[Template, int] = {}
        self.templates: list[Template] = []  # by id, shared by every device of the query

    def hour(self, stored: object) -> datetime:
        """A stored hour as aware UTC, as the column type would read it (SQLite hands back its text)."""
        utc = self.hours.get(stored)
        if utc is None:
            value = datetime.fromisoformat(stored) if isinstance(stored, str) else stored
            self.hours[stored] = utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return utc

    def walk(self, begin: datetime, until: datetime) -> list[datetime]:
        """The hours from ``begin`` while before ``until``; built once for the many devices sharing them."""
        hours = self.walks.get((begin, until))
        if hours is None:
            hours = self.walks[begin, until] = []
            while begin < until:
                hours.append(begin)
                begin += HOUR
        return hours

    def decimal(self, value: float) -> Decimal:
        """repr: the shortest decimal that reads back as the stored float."""
        exact = self.exact.get(value)
        if exact is None:
            self.exact[value] = exact = Decimal(repr(value))
        return exact

    def draw_wh(self, watts: Decimal, seconds: Decimal) -> Decimal:
        """Watts drawn for ``seconds``, in Wh."""
        wh = self.draw.get((watts, seconds))
        if wh is None:
            self.draw[watts, seconds] = wh = watts * seconds / 3600
        return wh

    def amount_id(self, amounts: Amounts) -> int:
        found = self.amount_ids.get(amounts)
        if found is None:
            self.amount_ids[amounts] = found = len(self.amounts)
            self.amounts.append(amounts)
        return found

    def template_id(self, template: Template) -> int:
        found = self.template_ids.get(template)
        if found is None:
            self.template_ids[template] = found = len(self.templates)
            self.templates.append(template)
        return found


@dataclass(frozen=True)
class DeviceHours:
    """One device's hours, each as the id of its lines in ``templates``: a device repeats the same few
    hours (a model hour idle, a silent hour off) all year, so an hour's lines are worked out once per
    kind and a sum can count hours of a kind instead of adding their lines one by one."""

    device: DeviceInfo
    hours: list[tuple[datetime, int]]
    templates: list[Template]

    def lines(self) -> list[HourLine]:
        new, device_id, templates = tuple.__new__, self.device.id, self.templates
        return [new(HourLine, (device_id, hour, *line)) for hour, tid in self.hours for line in templates[tid]]


def hour_amounts(rows: Sequence[Row], last_state: str | None, span: Decimal,
                 memo: Memo) -> tuple[Amounts, str | None]:
    """The amounts of an hour of ``span`` seconds holding ``rows`` after ``last_state`` was heard, and the
    state heard by its end: metered wins (the agent's rows kept for calibration only), and silence is
    attributed to the last state heard. Pure, and the same for every device."""
    amounts: list[Amount] = []
    found = trusted(rows)
    metered = bool(found) and found[0][3] == METERED
    covered = _ZERO
    heard = []
    for _, _, state, method, joules, stored_seconds in rows:
        seconds, exact = memo.decimal(stored_seconds), memo.decimal(joules)
        if metered and method != METERED:
            amounts.append((state, method, Kind.OVERRIDDEN, seconds, exact))
            continue
        amounts.append((state, method, Kind.REPORTED, seconds, exact))
        covered += seconds
        if seconds > 0:
            heard.append(state)
    if heard:
        last_state = gap_state(heard)
    silent = span - covered
    if silent > GAP_TOLERANCE_SECONDS:
        amounts.append((last_state or "off", ATTRIBUTED, Kind.SILENT_METERED if metered else Kind.SILENT, silent,
                        _ZERO))
    return tuple(amounts), last_state


class DeviceLines:
    """Turns amounts into one device's lines (see ``device_hours``)."""

    def __init__(self, device: DeviceInfo, monitor_watts: Mapping[str, Decimal], memo: Memo) -> None:
        self.memo = memo
        self.monitors = device.monitors
        self.own_watts = {state: device.profile.watts(state) for state in monitor_watts}
        self.screen_watts = {state: device.monitors * watts for state, watts in monitor_watts.items()}
        self.templates: dict[int, int] = {}  # amounts id → template id

    def template(self, aid: int) -> int:
        found = self.templates.get(aid)
        if found is None:
            self.templates[aid] = found = self.memo.template_id(self.lines(self.memo.amounts[aid]))
        return found

    def lines(self, amounts: Iterable[Amount]) -> Template:
        """The rules that need the device: RAPL to the wall, screens with the PC (but not on a meter), silence
        at the profile's watts. Linear in seconds and joules, so a sum of amounts gives the sum of lines."""
        memo, lines = self.memo, []
        for state, method, kind, seconds, joules in amounts:
            if kind is Kind.REPORTED:
                lines.append((state, method, seconds,
                              (joules * memo.rapl_factor if method == "rapl" else joules) / 3600))
                if self.monitors and method != METERED:
                    lines.append((state, "model", _ZERO, memo.draw_wh(self.screen_watts[state], seconds)))
            elif kind is not Kind.OVERRIDDEN:
                lines.append((state, ATTRIBUTED, seconds, memo.draw_wh(self.own_watts[state], seconds)))
                if self.monitors and kind is Kind.SILENT:
                    lines.append((state, ATTRIBUTED, _ZERO, memo.draw_wh(self.screen_watts[state], seconds)))
        return tuple(lines)


def walk_hours(rows: Sequence[Row], first_hour: datetime | None, last_state: str | None, start: datetime,
               until: datetime, memo: Memo) -> list[tuple[datetime, int]]:
    """One device's hours from ``start`` until ``until`` (a partial last hour is attributed only up to
    ``until``), each as the id of its amounts: pure, given its stored buckets in that range in hour order,
    the hour it was first heard of and the state it was last heard in before ``start``.

    One walk along the hours and the buckets together. A whole hour's amounts depend only on its buckets'
    states, methods and amounts and on the state last heard, so they are worked out once per such kind."""
    hours: list[tuple[datetime, int]] = []
    if first_hour is None:
        return hours
    kinds = memo.whole
    stored_hour, to_utc, amounts, add = memo.hours.get, memo.hour, memo.amounts, hours.append
    walk = memo.walk(max(start, first_hour), until)
    if not walk:
        return hours
    whole = len(walk) if walk[-1] + HOUR <= until else len(walk) - 1  # the hours before a partial last one
    i, n, k = 0, len(rows), 0
    next_hour = (stored_hour(rows[0][1]) or to_utc(rows[0][1])) if rows else None
    while k < len(walk):
        hour = walk[k]
        while next_hour is not None and next_hour < hour:  # not on an hour of the walk: no hour holds it
            i += 1
            next_hour = (stored_hour(rows[i][1]) or to_utc(rows[i][1])) if i < n else None
        if next_hour == hour:
            j, stored = i + 1, rows[i][1]
            while j < n and rows[j][1] == stored:
                j += 1
            found = rows[i:j]
            kind = found[0][2:] if j - i == 1 else tuple(row[2:] for row in found)
            i = j
            next_hour = (stored_hour(rows[i][1]) or to_utc(rows[i][1])) if i < n else None
            stop = k + 1
        else:
            # Silence until the next report: whole silent hours after the same state are all alike.
            found, kind = (), None
            stop = whole if next_hour is None else min(whole, k - (hour - next_hour) // HOUR)
        if k < whole:
            known = kinds.get((kind, last_state))
            if known is None:
                made, after = hour_amounts(found, last_state, _FULL, memo)
                known = kinds[kind, last_state] = (memo.amount_id(made), after)
            aid, last_state = known
        else:
            made, last_state = hour_amounts(found, last_state, Decimal(int((until - hour).total_seconds())), memo)
            aid = memo.amount_id(made)
            stop = k + 1
        if amounts[aid]:
            if stop == k + 1:
                add((hour, aid))
            else:
                hours.extend(zip(walk[k:stop], repeat(aid)))
        k = stop
    return hours


def device_hours(device: DeviceInfo, walked: Sequence[tuple[datetime, int]], monitor_watts: Mapping[str, Decimal],
                 memo: Memo) -> DeviceHours:
    """One device's walked hours (see ``walk_hours``) as the ids of its lines: consecutive hours of one
    kind of amounts share their lines, worked out for the device once per kind."""
    if not walked:
        return DeviceHours(device, [], memo.templates)
    template, hours, previous, tid = DeviceLines(device, monitor_watts, memo).template, [], -1, -1
    add = hours.append
    for hour, aid in walked:
        if aid != previous:
            previous, tid = aid, template(aid)
        add((hour, tid))
    return DeviceHours(device, hours, memo.templates)


def device_rows(session: Session, ids: list[int], start: datetime, end: datetime) -> dict[int, list[Row]]:
    """Per device, its stored buckets in [start, end) in hour order.

    Read straight from the driver's cursor, not through SQLAlchemy's rows and column types: the read is
    most of the cost of a summary, and ``Memo`` converts each distinct hour and float once instead."""
    result = session.connection().execute(
        select(EnergyBucket.device_id, EnergyBucket.hour, EnergyBucket.state, EnergyBucket.method,
               EnergyBucket.joules, EnergyBucket.seconds)
        .where(col(EnergyBucket.device_id).in_(ids), col(EnergyBucket.hour) >= start, col(EnergyBucket.hour) < end)
        .order_by(col(EnergyBucket.device_id), col(EnergyBucket.hour), col(EnergyBucket.state),
                  col(EnergyBucket.method)))
    rows = result.cursor.fetchall()
    result.close()
    return {device_id: list(found) for device_id, found in groupby(rows, itemgetter(0))}


def monitor_watts(estate: Estate) -> dict[str, Decimal]:
    """The catalogue's monitor, by state: what a screen counted with a PC draws."""
    monitor = estate.catalogue.monitor()
    return {s: monitor.watts(s) for s in ("active", "idle", "sleep", "off")}


def iter_walks(session: Session, device_ids: Sequence[int], start: datetime, until: datetime,
               memo: Memo) -> Iterator[tuple[int, list[tuple[datetime, int]]]]:
    """Each device's hours from ``start`` (on the hour) until ``until`` as ids of their amounts (see
    ``walk_hours``), ``CHUNK`` devices at a time, so that a trust's year is never held at once."""
    end = hour_ceil(until)
    for i in range(0, len(device_ids), CHUNK):
        ids = list(device_ids[i:i + CHUNK])
        rows = device_rows(session, ids, start, end)
        first = dict(session.exec(select(EnergyBucket.device_id, func.min(EnergyBucket.hour))
                                  .where(col(EnergyBucket.device_id).in_(ids)).group_by(EnergyBucket.device_id)).all())
        before = _last_heard_before(session, ids, start)
        for device_id in ids:
            first_hour = first.get(device_id)
            yield device_id, walk_hours(rows.get(device_id, ()), first_hour and as_utc(first_hour),
                                        before.get(device_id), start, until, memo)


def iter_device_hours(session: Session, estate: Estate, start: datetime, end: datetime,
                      now: datetime | None = None, memo: Memo | None = None,
                      devices: Sequence[DeviceInfo] | None = None) -> Iterator[DeviceHours]:
    """Every device's hours (or ``devices``' only) over the whole UTC hours covering [start, end),
    attributing silence only up to ``now`` (the future is not yet silent). ``memo``: one shared with
    other parts of the same sum (controller.energy.rollup), whose lines then share ids with these."""
    until = min(as_utc(end), as_utc(now or utcnow()))
    start = hour_floor(start)
    if not estate.devices or start >= until:
        return
    screens = monitor_watts(estate)
    memo = memo or Memo(estate.catalogue.rapl_wall_factor)
    chosen = list(estate.devices.values()) if devices is None else list(devices)
    by_id = {device.id: device for device in chosen}
    for device_id, walked in iter_walks(session, list(by_id), start, until, memo):
        yield device_hours(by_id[device_id], walked, screens, memo)


def estate_lines(session: Session, estate: Estate, start: datetime, end: datetime,
                 now: datetime | None = None) -> list[HourLine]:
    """Lines for every device of ``estate`` over the whole UTC hours covering [start, end), attributing
    silence only up to ``now`` (the future is not yet silent)."""
    return [line for hours in iter_device_hours(session, estate, start, end, now) for line in hours.lines()]


def _last_heard_before(session: Session, ids: list[int], start: datetime) -> dict[int, str]:
    """Per device, the gap state implied by the last hour it was heard in before ``start``, as the walk
    along the hours carries it: the hour's trusted rows (a meter's alone, where one reported) with time
    in them. So a period starting anywhere attributes silence as the whole history walked would, which
    lets the rollup read a period as days and hours and add them up."""
    bucket, metered = EnergyBucket.__table__.alias("b"), EnergyBucket.__table__.alias("m")
    trusted_row = (bucket.c.seconds > 0) & ((bucket.c.method == METERED) | ~exists().where(
        metered.c.device_id == bucket.c.device_id, metered.c.hour == bucket.c.hour, metered.c.method == METERED))
    latest = (select(bucket.c.device_id, func.max(bucket.c.hour).label("hour"))
              .where(bucket.c.device_id.in_(ids), bucket.c.hour < start, trusted_row)
              .group_by(bucket.c.device_id).subquery())
    rows = session.execute(select(bucket.c.device_id, bucket.c.state).join(
        latest, (bucket.c.device_id == latest.c.device_id) & (bucket.c.hour == latest.c.hour)).where(trusted_row))
    states: dict[int, list[str]] = defaultdict(list)
    for device_id, state in rows:
        states[device_id].append(state)
    return {device_id: gap_state(found) for device_id, found in states.items()}
