"""What `caretaker policy simulate` and the console's "projected impact" read from the database before
handing it to the pure ``simulate``: the devices, their reports, and what each would draw off or asleep."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from controller.db import in_batches
from controller.energy import catalogue
from controller.errors import DomainError
from controller.policy.model import Action, DeviceFacts, Mode
from controller.policy.simulate import Observation, Simulation, simulate
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
    ids = [int(d) for d in device_ids]
    rows = [row for batch in in_batches(ids) for row in session.exec(
        select(ReportRow).where(ReportRow.device_id.in_(batch), ReportRow.end > start, ReportRow.start < end))]
    return [Observation(str(r.device_id), r.start, r.end, r.state, r.idle_seconds, r.cpu_percent, r.sessions,
                        r.joules, r.slept_seconds, tuple(r.processes_watched or ()), tuple(r.processes_running or ()))
            for r in rows]


def replay(session: Session, active: ActiveSet, start: datetime, end: datetime, site: str | None = None,
           modes: dict[str, Mode] | None = None) -> Simulation:
    facts, residual = estate(session, active, site)
    observed = observations(session, [f.device_id for f in facts], start, end)
    return simulate(active.policies, active.calendars, facts, observed, residual, start, end, modes)


def projected_impact(session: Session, active: ActiveSet, name: str, mode: Mode, start: datetime,
                     end: datetime) -> tuple[Simulation, Simulation]:
    """The last period replayed as things are, and with ``name`` switched to ``mode``: (now, after)."""
    active.named(name)  # raises UnknownPolicy
    return replay(session, active, start, end), replay(session, active, start, end, modes={name: mode})
