"""What `caretaker policy simulate` and the console's "projected impact" read from the database before
handing it to the pure ``simulate``: the devices, their reports, and what each would draw off or asleep."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, literal, or_, true
from sqlmodel import Session, col, func, select

from agent.protocol import MAX_INTERVAL_SECONDS
from controller.db import UTCDateTime, in_batches, seconds_between
from controller.energy import catalogue
from controller.errors import DomainError
from controller.policy.model import Action, DeviceFacts, Mode
from controller.policy.simulate import (
    AWAKE,
    Observation,
    Reading,
    Simulation,
    Tail,
    Unjudged,
    decisive_spans,
    simulate,
)
from controller.policy.store import ActiveSet
from controller.register.facts import device_facts
from controller.register.models import Device, Site
from controller.register.models import Report as ReportRow


class UnknownSite(LookupError, DomainError):
    pass


def estate(session: Session, active: ActiveSet, site: str | None = None
           ) -> tuple[list[DeviceFacts], dict[str, dict[Action, float]]]:
    """The devices (of one site, by name), placed by ``active``'s rules, and their off/sleep watts from the
    power catalogue."""
    query = select(Device, Site).join(Site, Site.id == Device.site_id)
    if site is not None:
        if session.exec(select(Site).where(Site.name == site)).first() is None:
            raise UnknownSite(f"no site called {site!r}")
        query = query.where(Site.name == site)
    known = catalogue.load(session)
    facts, residual = [], {}
    for device, where in session.exec(query):
        fact = device_facts(device, where, active.placement)
        profile = known.lookup(device.device_class, device.vendor, device.model)
        off, sleep = float(profile.watts("off")), float(profile.watts("sleep"))
        facts.append(fact)
        residual[fact.device_id] = {Action.SHUTDOWN: off, Action.HIBERNATE: off, Action.SLEEP: sleep}
    return facts, residual


_COLUMNS = (ReportRow.device_id, ReportRow.start, ReportRow.end, ReportRow.state, ReportRow.idle_seconds,
            ReportRow.cpu_percent, ReportRow.sessions, ReportRow.joules, ReportRow.slept_seconds,
            ReportRow.processes_watched, ReportRow.processes_running)


def observations(session: Session, readings: Mapping[str, Reading], start: datetime, end: datetime
                 ) -> list[Observation]:
    """The devices' awake reports in the period that lie in their ``Reading``'s spans (``decisive_spans``: the
    only ones that can change a replay) and do not start in a summed stretch (``tails``), the columns the
    replay needs only: not the stored samples. Devices that share a reading are asked for together, and
    between stretches only (``_between``), so that the database walks its (device, start) index past them.
    Read as plain rows (no ORM objects)."""
    connection = session.connection()
    found = []
    for reading, ids in _alike(readings):
        within = or_(*(and_(true() if low is None else ReportRow.end >= low,
                            true() if high is None else ReportRow.start < high) for low, high in reading.spans))
        for low, high in _between(reading.summed, start, end):
            for batch in in_batches(ids):
                found += connection.execute(select(*_COLUMNS).where(
                    col(ReportRow.device_id).in_(batch), ReportRow.start >= low, ReportRow.start < high,
                    ReportRow.end > start, col(ReportRow.state).in_(AWAKE), within)).all()
    return _observations(found)


def _between(summed: Sequence[tuple[datetime, datetime]], start: datetime, end: datetime
             ) -> list[tuple[datetime, datetime]]:
    """Where the reports of the period can start, from a report's longest (``MAX_INTERVAL_SECONDS``, ingest
    refuses longer) before ``start`` to ``end``, less the ``summed`` stretches."""
    pieces, low = [], start - timedelta(seconds=MAX_INTERVAL_SECONDS)
    for cut, until in summed:
        if low < min(cut, end):
            pieces.append((low, min(cut, end)))
        low = max(low, until)
    if low < end:
        pieces.append((low, end))
    return pieces


def tails(session: Session, readings: Mapping[str, Reading], start: datetime, end: datetime) -> list[Tail]:
    """The awake reports of each device's summed stretches (``Reading.summed``), summed in SQL by device and
    stretch: ``Tail``s, the sums the replay needs of reports it does not judge, each report's counted up to
    the stretch's end. A week of an estate left on at night is read as a few rows per device and night
    instead of a hundred. One query per stretch, so that the database walks the (device, start) index over
    that stretch only and classifies nothing."""
    awake = seconds_between(session, ReportRow.start, ReportRow.end) - ReportRow.slept_seconds
    # Reports cover more than no time (ingest), so one that did not sleep was awake: said first, SQLite
    # works out no duration for it (the cases below are written to work each out as few times as it can).
    measured = and_(col(ReportRow.joules).is_not(None), or_(ReportRow.slept_seconds <= 0, awake > 0))
    connection = session.connection()
    found = []
    for reading, ids in _alike(readings):
        for low, high in reading.summed:
            before = seconds_between(session, ReportRow.start, literal(high, UTCDateTime()))
            sums = (ReportRow.device_id, func.count(),
                    func.sum(case((~measured, 0.0), (ReportRow.end < high, ReportRow.joules),
                                  (before < awake, ReportRow.joules * before / awake), else_=ReportRow.joules)),
                    func.sum(case((~measured, 0.0), (ReportRow.end < high, awake), (before < awake, before),
                                  else_=awake)),
                    func.min(case((measured, ReportRow.joules / awake))))
            for batch in in_batches(ids):
                rows = connection.execute(select(*sums).where(
                    col(ReportRow.device_id).in_(batch), ReportRow.end > start, col(ReportRow.state).in_(AWAKE),
                    _in_stretch(low, high, end)).group_by(ReportRow.device_id))
                found += [Tail(str(device_id), low, high, count, float(joules), float(awake_seconds),
                               None if watts is None else float(watts))
                          for device_id, count, joules, awake_seconds, watts in rows]
    return found


def judged(session: Session, unjudged: Sequence[Tail], start: datetime, end: datetime) -> list[Observation]:
    """The reports of ``unjudged`` tails, read for the replay to judge them: where it did not power the
    device down before the stretch (a device signed in or busy through the evening, say)."""
    by_stretch: dict[tuple[datetime, datetime], list[int]] = {}
    for tail in unjudged:
        by_stretch.setdefault((tail.start, tail.until), []).append(int(tail.device_id))
    connection = session.connection()
    found = []
    for (low, high), ids in by_stretch.items():
        for batch in in_batches(ids):
            found += connection.execute(select(*_COLUMNS).where(
                col(ReportRow.device_id).in_(batch), ReportRow.end > start, col(ReportRow.state).in_(AWAKE),
                _in_stretch(low, high, end))).all()
    return _observations(found)


def _alike(readings: Mapping[str, Reading]) -> list[tuple[Reading, list[int]]]:
    """The devices (as stored ids) by shared ``Reading``, to be asked for together."""
    alike: dict[int, tuple[Reading, list[int]]] = {}
    for device_id, reading in readings.items():
        alike.setdefault(id(reading), (reading, []))[1].append(int(device_id))
    return list(alike.values())


def _in_stretch(low: datetime, high: datetime, end: datetime) -> ColumnElement[bool]:
    """A report of the period (to ``end``) in the summed stretch from ``low`` to ``high``: it starts in both.
    One bound on each side of start: given two upper bounds, SQLite may walk the index to the wrong one."""
    return and_(ReportRow.start >= low, ReportRow.start < min(high, end))


def _observations(rows: Sequence) -> list[Observation]:
    return [Observation(str(device_id), report_start, report_end, state, idle, cpu, sessions, joules, slept,
                        tuple(watched) if watched else (), tuple(running) if running else ())
            for device_id, report_start, report_end, state, idle, cpu, sessions, joules, slept, watched, running
            in rows]


def reports_in(session: Session, device_ids: list[str], start: datetime, end: datetime) -> dict[str, int]:
    """How many reports each device sent in the period, whatever their state: counted, not read. Those that
    start in it are counted from the (device, start) index alone; those that start before and reach into
    it can start at most a report's longest (``MAX_INTERVAL_SECONDS``, ingest refuses longer) before."""
    ids = [int(d) for d in device_ids]
    earliest = start - timedelta(seconds=MAX_INTERVAL_SECONDS)
    counts: Counter[str] = Counter()
    for batch in in_batches(ids):
        for within in (and_(ReportRow.start >= start, ReportRow.start < end),
                       and_(ReportRow.start >= earliest, ReportRow.start < start, ReportRow.end > start)):
            counts.update({str(device_id): count for device_id, count in session.exec(
                select(ReportRow.device_id, func.count()).where(col(ReportRow.device_id).in_(batch), within
                                                                ).group_by(ReportRow.device_id))})
    return dict(counts)


@dataclass(frozen=True)
class Period:
    """A period read once and replayed for each of ``variants`` (the modes it was read for): the awake
    reports read (``decisive``), the stretches summed (``tails``), the count of the rest (``quiet``), and
    the replays (``simulations``, one per variant)."""

    decisive: list[Observation]
    tails: list[Tail]
    quiet: dict[str, int]
    variants: tuple[Mapping[str, Mode] | None, ...]
    simulations: tuple[Simulation, ...]

    def replay(self, modes: Mapping[str, Mode] | None = None) -> Simulation:
        if modes not in self.variants:
            raise ValueError(f"this period was read for the modes {self.variants}, not {modes}")
        return self.simulations[self.variants.index(modes)]


def period(session: Session, active: ActiveSet, start: datetime, end: datetime, site: str | None = None,
           variants: tuple[Mapping[str, Mode] | None, ...] = (None,)) -> Period:
    """Reads what the replays of ``variants`` need and replays them. The reports of each power-down window
    past its first hour are summed in SQL (``tails``); where a replay reaches such a stretch without the
    device powered down to its end (``Unjudged``), its reports are read and the replay runs again, until
    none is left to judge. That is rare (a device in use through the first hour of its window), and then
    only those stretches are read."""
    facts, residual = estate(session, active, site)
    readings = decisive_spans(active.policies, active.calendars, facts, start, end, variants)
    decisive = observations(session, readings, start, end)
    summed = tails(session, readings, start, end)
    read = Counter(o.device_id for o in decisive)
    for tail in summed:
        read[tail.device_id] += tail.reports
    quiet = {device_id: count - read[device_id]
             for device_id, count in reports_in(session, list(readings), start, end).items()}
    simulations = []
    for modes in variants:
        while True:
            try:
                simulations.append(simulate(active.policies, active.calendars, facts, decisive, residual, start, end,
                                            modes, quiet, summed))
                break
            except Unjudged as unjudged:
                decisive += judged(session, unjudged.tails, start, end)
                gone = set(unjudged.tails)
                summed = [tail for tail in summed if tail not in gone]
    return Period(decisive, summed, quiet, variants, tuple(simulations))


def replay(session: Session, active: ActiveSet, start: datetime, end: datetime, site: str | None = None,
           modes: Mapping[str, Mode] | None = None) -> Simulation:
    return period(session, active, start, end, site, (modes,)).replay(modes)


def projected_impact(session: Session, active: ActiveSet, name: str, mode: Mode, start: datetime,
                     end: datetime) -> tuple[Simulation, Simulation]:
    """The last period replayed as things are, and with ``name`` switched to ``mode``: (now, after), from
    one read of the period."""
    active.named(name)  # raises UnknownPolicy
    switched = {name: mode}
    read = period(session, active, start, end, variants=(None, switched))
    return read.replay(), read.replay(switched)
