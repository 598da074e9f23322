"""What `caretaker policy simulate` and the console's "projected impact" read from the database before
handing it to the pure ``simulate``: the devices, their reports, and what each would draw off or asleep."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, func, select

from controller.db import in_batches
from controller.energy import catalogue
from controller.errors import DomainError
from controller.policy.model import Action, DeviceFacts, Mode
from controller.policy.simulate import AWAKE, Observation, Simulation, simulate
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


def observations(session: Session, device_ids: list[str], start: datetime, end: datetime) -> list[Observation]:
    """The devices' awake reports in the period (the replay acts at the end of awake reports only), the
    columns it needs only: not the stored samples."""
    ids = [int(d) for d in device_ids]
    columns = (ReportRow.device_id, ReportRow.start, ReportRow.end, ReportRow.state, ReportRow.idle_seconds,
               ReportRow.cpu_percent, ReportRow.sessions, ReportRow.joules, ReportRow.slept_seconds,
               ReportRow.processes_watched, ReportRow.processes_running)
    rows = [row for batch in in_batches(ids) for row in session.exec(select(*columns).where(
        col(ReportRow.device_id).in_(batch), ReportRow.end > start, ReportRow.start < end,
        col(ReportRow.state).in_(AWAKE)))]
    return [Observation(str(device_id), report_start, report_end, state, idle, cpu, sessions, joules, slept,
                        tuple(watched or ()), tuple(running or ()))
            for device_id, report_start, report_end, state, idle, cpu, sessions, joules, slept, watched, running
            in rows]


def quiet_reports(session: Session, device_ids: list[str], start: datetime, end: datetime) -> dict[str, int]:
    """How many of each device's reports in the period were asleep or off: counted, not replayed."""
    ids = [int(d) for d in device_ids]
    return {str(device_id): count for batch in in_batches(ids) for device_id, count in session.exec(
        select(ReportRow.device_id, func.count()).where(
            col(ReportRow.device_id).in_(batch), ReportRow.end > start, ReportRow.start < end,
            col(ReportRow.state).not_in(AWAKE)).group_by(ReportRow.device_id))}


@dataclass(frozen=True)
class Period:
    """What a replay reads: the devices (placed by ``active``), their off/sleep watts, their awake reports
    and the count of the rest."""

    active: ActiveSet
    start: datetime
    end: datetime
    devices: list[DeviceFacts]
    residual: dict[str, dict[Action, float]]
    awake: list[Observation]
    quiet: dict[str, int]

    def replay(self, modes: dict[str, Mode] | None = None) -> Simulation:
        return simulate(self.active.policies, self.active.calendars, self.devices, self.awake, self.residual,
                        self.start, self.end, modes, self.quiet)


def period(session: Session, active: ActiveSet, start: datetime, end: datetime, site: str | None = None) -> Period:
    facts, residual = estate(session, active, site)
    ids = [f.device_id for f in facts]
    return Period(active, start, end, facts, residual, observations(session, ids, start, end),
                  quiet_reports(session, ids, start, end))


def replay(session: Session, active: ActiveSet, start: datetime, end: datetime, site: str | None = None,
           modes: dict[str, Mode] | None = None) -> Simulation:
    return period(session, active, start, end, site).replay(modes)


def projected_impact(session: Session, active: ActiveSet, name: str, mode: Mode, start: datetime,
                     end: datetime) -> tuple[Simulation, Simulation]:
    """The last period replayed as things are, and with ``name`` switched to ``mode``: (now, after), from
    one read of the period."""
    active.named(name)  # raises UnknownPolicy
    read = period(session, active, start, end)
    return read.replay(), read.replay({name: mode})
