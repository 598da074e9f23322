"""Everything accounting reads besides the hourly buckets, loaded once per query.

Sites (time zone), devices (class, model, room) with their power profile calibrated from their own
measured history, tariffs and carbon factors. Kept apart from the arithmetic so the arithmetic stays
pure and testable without a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from controller.db import in_batches
from controller.energy import carbon, catalogue
from controller.energy.catalogue import Catalogue, PowerProfile
from controller.energy.models import EnergyDay, EnergyMonth
from controller.energy.rolled import day_start, marks, rolled_through
from controller.energy.tariff import TariffSpec, tariffs_for
from controller.register.facts import labels
from controller.register.models import Device, EnergyBucket, Site
from controller.register.placement import PlacementRule

# Measured methods, most trusted first; what calibrates a device's profile.
MEASURED = ("metered", "rapl", "battery")
# An hour of measured time in a state before it replaces the catalogue figure for that state.
CALIBRATION_MIN_SECONDS = 3600
# Calibrated watts are kept to the nanowatt: the database adds a device's measurements as floats, and the
# rollup and the hours add them in different orders, which would part in the fifteenth digit.
NANOWATT = Decimal("0.000000001")
# Rolled amounts that are measurements (controller.energy.lines.Kind): reported, or reported and overridden.
MEASURED_KINDS = ("reported", "overridden")


@dataclass(frozen=True)
class SiteInfo:
    id: int
    name: str
    zone: ZoneInfo
    trust: str | None
    postcode: str | None


@dataclass(frozen=True)
class DeviceInfo:
    id: int
    site_id: int
    hostname: str
    device_class: str
    room: str | None
    profile: PowerProfile  # calibrated from the device's measurements where it has them
    monitors: int  # monitors counted with it (a desktop's screen), drawn from the catalogue's monitor entry
    tags: tuple[str, ...] = ()  # what policies select devices by, besides site, room and class


@dataclass(frozen=True)
class Estate:
    sites: Mapping[int, SiteInfo]
    devices: Mapping[int, DeviceInfo]
    catalogue: Catalogue
    factors: carbon.CarbonFactors
    tariffs: Mapping[int, list[TariffSpec]]


def _measured_sums(session: Session, ids: list[int]) -> dict[tuple[int, str, str], list[float]]:
    """Per device, state and measured method, [joules, seconds] over all its history: rolled days from the
    daily rollup (what a meter overrode included: it is still a measurement), the rest from hours."""
    through, marked = rolled_through(session), marks(session, ids)
    sums: dict[tuple[int, str, str], list[float]] = {}

    def add(rows) -> None:
        for device_id, state, method, joules, seconds in rows:
            found = sums.setdefault((device_id, state, method), [0.0, 0.0])
            found[0] += float(joules or 0.0)
            found[1] += float(seconds or 0.0)

    def hours(where) -> None:
        add(session.exec(select(EnergyBucket.device_id, EnergyBucket.state, EnergyBucket.method,
                                func.sum(EnergyBucket.joules), func.sum(EnergyBucket.seconds))
                         .where(col(EnergyBucket.method).in_(MEASURED), *where)
                         .group_by(EnergyBucket.device_id, EnergyBucket.state, EnergyBucket.method)))

    def days(where) -> None:
        add(session.exec(select(EnergyDay.device_id, EnergyDay.state, EnergyDay.method,
                                func.sum(EnergyDay.joules), func.sum(EnergyDay.seconds))
                         .where(col(EnergyDay.method).in_(MEASURED), col(EnergyDay.kind).in_(MEASURED_KINDS), *where)
                         .group_by(EnergyDay.device_id, EnergyDay.state, EnergyDay.method)))

    def months(where) -> None:
        add(session.exec(select(EnergyMonth.device_id, EnergyMonth.state, EnergyMonth.method,
                                func.sum(EnergyMonth.joules), func.sum(EnergyMonth.seconds))
                         .where(col(EnergyMonth.method).in_(MEASURED), col(EnergyMonth.kind).in_(MEASURED_KINDS),
                                *where)
                         .group_by(EnergyMonth.device_id, EnergyMonth.state, EnergyMonth.method)))

    def rolled(device_ids, boundary: date) -> None:
        """Whole months before ``boundary``'s from the monthly rollup, its month's days from the daily one."""
        month = boundary.replace(day=1)
        months([col(EnergyMonth.device_id).in_(device_ids), col(EnergyMonth.month) < month])
        days([col(EnergyDay.device_id).in_(device_ids), col(EnergyDay.day) >= month, col(EnergyDay.day) < boundary])

    plain = [i for i in ids if i not in marked]
    for batch in in_batches(plain):
        if through is None:
            hours([col(EnergyBucket.device_id).in_(batch)])
            continue
        hours([col(EnergyBucket.device_id).in_(batch), col(EnergyBucket.hour) >= day_start(through)])
        rolled(batch, through)
    for device_id, from_day in marked.items():
        boundary = from_day if through is None else min(from_day, through)
        hours([EnergyBucket.device_id == device_id, col(EnergyBucket.hour) >= day_start(boundary)])
        rolled([device_id], boundary)
    return sums


def measured_watts(session: Session, device_ids: Iterable[int], rapl_factor: Decimal) -> dict[int, dict[str, Decimal]]:
    """Per device and state, the mean watts of its most trusted measured method (RAPL corrected to the wall)."""
    ids = list(device_ids)
    if not ids:
        return {}
    best: dict[tuple[int, str], tuple[int, Decimal]] = {}
    for (device_id, state, method), (joules, seconds) in _measured_sums(session, ids).items():
        if seconds < CALIBRATION_MIN_SECONDS:
            continue
        watts = (Decimal(str(joules)) / Decimal(str(seconds))).quantize(NANOWATT)
        if method == "rapl":
            watts *= rapl_factor
        rank = MEASURED.index(method)
        if (device_id, state) not in best or rank < best[device_id, state][0]:
            best[device_id, state] = (rank, watts)
    found: dict[int, dict[str, Decimal]] = {}
    for (device_id, state), (_, watts) in best.items():
        found.setdefault(device_id, {})[state] = watts
    return found


def load_estate(session: Session, site_ids: Iterable[int] | None = None,
                device_ids: Iterable[int] | None = None, placement: Sequence[PlacementRule] = ()) -> Estate:
    """The sites ``site_ids`` (all when None) and their devices, only ``device_ids`` of them when given; their
    rooms and tags as the register resolves them with ``placement``'s rules (register/facts.py)."""
    site_query = select(Site)
    if site_ids is not None:
        site_query = site_query.where(col(Site.id).in_(list(site_ids)))
    rows_of_sites = list(session.exec(site_query))
    sites = {s.id: SiteInfo(s.id, s.name, ZoneInfo(s.timezone), s.trust, s.postcode) for s in rows_of_sites}
    site_rows = {s.id: s for s in rows_of_sites}
    cat = catalogue.load(session)
    device_query = select(Device).where(col(Device.site_id).in_(list(sites)))
    if device_ids is not None:
        device_query = device_query.where(col(Device.id).in_(list(device_ids)))
    rows = list(session.exec(device_query))
    measured = measured_watts(session, (d.id for d in rows), cat.rapl_wall_factor)
    devices = {}
    for d in rows:
        base = cat.lookup(d.device_class, d.vendor, d.model)
        profile = catalogue.with_measured(base, measured.get(d.id, {}),
                                          f"calibrated from this device's measured power; else {base.source}")
        placed = labels(d, site_rows[d.site_id], placement)
        devices[d.id] = DeviceInfo(d.id, d.site_id, d.hostname, d.device_class or catalogue.UNKNOWN, placed.room_name,
                                   profile, base.monitors, placed.tag_names)
    return Estate(sites, devices, cat, carbon.load(session), tariffs_for(session, sites))
