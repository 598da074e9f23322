"""Everything accounting reads besides the hourly buckets, loaded once per query.

Sites (time zone), devices (class, model, room) with their power profile calibrated from their own
measured history, tariffs and carbon factors. Kept apart from the arithmetic so the arithmetic stays
pure and testable without a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from controller.db import in_batches
from controller.energy import carbon, catalogue
from controller.energy.catalogue import Catalogue, PowerProfile
from controller.energy.tariff import TariffSpec, tariffs_for
from controller.register.models import Device, EnergyBucket, Site

# Measured methods, most trusted first; what calibrates a device's profile.
MEASURED = ("metered", "rapl", "battery")
# An hour of measured time in a state before it replaces the catalogue figure for that state.
CALIBRATION_MIN_SECONDS = 3600


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


def measured_watts(session: Session, device_ids: Iterable[int], rapl_factor: Decimal) -> dict[int, dict[str, Decimal]]:
    """Per device and state, the mean watts of its most trusted measured method (RAPL corrected to the wall)."""
    ids = list(device_ids)
    if not ids:
        return {}
    rows = [row for batch in in_batches(ids) for row in session.exec(
        select(EnergyBucket.device_id, EnergyBucket.state, EnergyBucket.method,
               func.sum(EnergyBucket.joules), func.sum(EnergyBucket.seconds))
        .where(col(EnergyBucket.device_id).in_(batch), col(EnergyBucket.method).in_(MEASURED))
        .group_by(EnergyBucket.device_id, EnergyBucket.state, EnergyBucket.method))]
    best: dict[tuple[int, str], tuple[int, Decimal]] = {}
    for device_id, state, method, joules, seconds in rows:
        if seconds is None or seconds < CALIBRATION_MIN_SECONDS:
            continue
        watts = Decimal(str(joules)) / Decimal(str(seconds))
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
                device_ids: Iterable[int] | None = None) -> Estate:
    """The sites ``site_ids`` (all when None) and their devices, only ``device_ids`` of them when given."""
    site_query = select(Site)
    if site_ids is not None:
        site_query = site_query.where(col(Site.id).in_(list(site_ids)))
    sites = {s.id: SiteInfo(s.id, s.name, ZoneInfo(s.timezone), s.trust, s.postcode) for s in session.exec(site_query)}
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
        devices[d.id] = DeviceInfo(d.id, d.site_id, d.hostname, d.device_class or catalogue.UNKNOWN, d.room,
                                   profile, base.monitors, tuple(d.tags or ()))
    return Estate(sites, devices, cat, carbon.load(session), tariffs_for(session, sites))
