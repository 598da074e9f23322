"""What `caretaker policy simulate` and the console's "projected impact" read from the database before
handing it to the pure ``simulate``: the devices, their reports, and what each would draw off or asleep."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, true
from sqlmodel import Session, col, func, select

from controller.db import in_batches
from controller.energy import catalogue
from controller.errors import DomainError
from controller.policy.model import Action, DeviceFacts, Mode
from controller.policy.simulate import AWAKE, Observation, Simulation, Span, decisive_spans, simulate
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


def observations(session: Session, spans: Mapping[str, Sequence[Span]], start: datetime, end: datetime
                 ) -> list[Observation]:
    """The devices' awake reports in the period that lie in their ``spans`` (``decisive_spans``: the only ones
    that can change a replay), the columns the replay needs only: not the stored samples. Devices that
    share spans are asked for together. Read as plain rows (no ORM objects): this read is most of a
    preview's time (bench/policy_preview.py)."""
    columns = (ReportRow.device_id, ReportRow.start, ReportRow.end, ReportRow.state, ReportRow.idle_seconds,
               ReportRow.cpu_percent, ReportRow.sessions, ReportRow.joules, ReportRow.slept_seconds,
               ReportRow.processes_watched, ReportRow.processes_running)
    alike: dict[int, tuple[Sequence[Span], list[int]]] = {}
    for device_id, its_spans in spans.items():
        alike.setdefault(id(its_spans), (its_spans, []))[1].append(int(device_id))
    connection = session.connection()
    found = []
    for its_spans, ids in alike.values():
        within = or_(*(and_(true() if low is None else ReportRow.end >= low,
                            true() if high is None else ReportRow.start < high) for low, high in its_spans))
        for batch in in_batches(ids):
            found += connection.execute(select(*columns).where(
                col(ReportRow.device_id).in_(batch), ReportRow.end > start, ReportRow.start < end,
                col(ReportRow.state).in_(AWAKE), within)).all()
    return [Observation(str(device_id), report_start, report_end, state, idle, cpu, sessions, joules, slept,
                        tuple(watched) if watched else (), tuple(running) if running else ())
            for device_id, report_start, report_end, state, idle, cpu, sessions, joules, slept, watched, running
            in found]


def reports_in(session: Session, device_ids: list[str], start: datetime, end: datetime) -> dict[str, int]:
    """How many reports each device sent in the period, whatever their state: counted, not read."""
    ids = [int(d) for d in device_ids]
    return {str(device_id): count for batch in in_batches(ids) for device_id, count in session.exec(
        select(ReportRow.device_id, func.count()).where(
            col(ReportRow.device_id).in_(batch), ReportRow.end > start, ReportRow.start < end
        ).group_by(ReportRow.device_id))}


@dataclass(frozen=True)
class Period:
    """What a replay reads: the devices (placed by ``active``), their off/sleep watts, the awake reports that
    can change a replay in any of ``variants`` (the modes it was read for), and the count of the rest."""

    active: ActiveSet
    start: datetime
    end: datetime
    devices: list[DeviceFacts]
    residual: dict[str, dict[Action, float]]
    decisive: list[Observation]
    quiet: dict[str, int]
    variants: tuple[Mapping[str, Mode] | None, ...] = (None,)

    def replay(self, modes: Mapping[str, Mode] | None = None) -> Simulation:
        if modes not in self.variants:
            raise ValueError(f"this period was read for the modes {self.variants}, not {modes}")
        return simulate(self.active.policies, self.active.calendars, self.devices, self.decisive, self.residual,
                        self.start, self.end, modes, self.quiet)


def period(session: Session, active: ActiveSet, start: datetime, end: datetime, site: str | None = None,
           variants: tuple[Mapping[str, Mode] | None, ...] = (None,)) -> Period:
    facts, residual = estate(session, active, site)
    spans = decisive_spans(active.policies, active.calendars, facts, start, end, variants)
    decisive = observations(session, spans, start, end)
    read = Counter(o.device_id for o in decisive)
    quiet = {device_id: count - read[device_id]
             for device_id, count in reports_in(session, list(spans), start, end).items()}
    return Period(active, start, end, facts, residual, decisive, quiet, variants)


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
