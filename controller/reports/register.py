"""The asset register as the audit pack reads it: how complete it is, which devices are past warranty or
OS support, how complete disposal evidence is, and what falls due for refresh with its embodied carbon.

Required register fields follow the DfE digital and technology standards (serial, assigned to,
location, purchase date, review date, warranty end, end of OS support). Disposal evidence is complete
when every field lifecycle.evidence requires for ``disposed`` is present. A device falls due for
refresh ``REFRESH_YEARS`` after purchase (tablets sooner), the cycles DOMAIN.md reports schools using.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, col, select

from controller.lifecycle.evidence import completeness
from controller.lifecycle.models import Asset, EmbodiedFactor
from controller.lifecycle.service import evidence_of
from controller.lifecycle.states import LEAVING, State
from controller.models import Device

REGISTER_FIELDS = ("serial", "assigned_to", "location", "purchase_date", "review_date", "warranty_end",
                   "os_end_of_support")
REFRESH_YEARS = {"tablet": 3}
DEFAULT_REFRESH_YEARS = 5
# Boavizta/ADEME embodied kgCO2e by class (DOMAIN.md), when the school has not recorded its own.
EMBODIED_KG = {"laptop": 180.0, "desktop": 280.0, "tablet": 76.0, "server": 3660.0, "monitor": 65.0}


@dataclass(frozen=True)
class RegisterStatus:
    assets: int  # devices in the register, disposed ones excluded
    completeness: float | None  # filled required fields / required fields, 0..1
    past_warranty: int
    past_os_support: int
    disposed: int
    disposal_evidence_complete: int  # disposed devices with every piece of evidence

    @property
    def disposal_completeness(self) -> float | None:
        return self.disposal_evidence_complete / self.disposed if self.disposed else None


@dataclass(frozen=True)
class RefreshYear:
    year: int
    devices: int
    embodied_kg: float


def _assets(session: Session, device_ids: Sequence[int]) -> list[tuple[Device, Asset]]:
    rows = session.exec(select(Device, Asset).join(Asset, col(Asset.device_id) == col(Device.id))
                        .where(col(Device.id).in_(device_ids))).all()
    return [(d, a) for d, a in rows]


def status(session: Session, devices: Sequence[Device], today: date) -> RegisterStatus:
    rows = _assets(session, [d.id for d in devices])
    live = [(d, a) for d, a in rows if a.state != State.DISPOSED]
    filled = sum(_filled(d, a) for d, a in live)
    leaving = [(d, a) for d, a in rows if a.state == State.DISPOSED]
    complete = 0
    for device, asset in leaving:
        present, required = completeness(evidence_of(session, device.id, asset.batch_id))
        complete += present == required
    in_use = [(d, a) for d, a in live if a.state not in LEAVING]
    return RegisterStatus(
        assets=len(live),
        completeness=filled / (len(live) * len(REGISTER_FIELDS)) if live else None,
        past_warranty=sum(1 for _, a in in_use if a.warranty_end is not None and a.warranty_end < today),
        past_os_support=sum(1 for _, a in in_use if a.os_end_of_support is not None and a.os_end_of_support < today),
        disposed=len(leaving), disposal_evidence_complete=complete)


def _filled(device: Device, asset: Asset) -> int:
    values = [device.serial, *(getattr(asset, name) for name in REGISTER_FIELDS[1:])]
    return sum(value not in (None, "") for value in values)


def refresh_forecast(session: Session, devices: Sequence[Device], first_year: int, years: int = 5) -> list[RefreshYear]:
    """Devices in service falling due in each of ``years`` years from ``first_year`` (overdue ones in the first)."""
    own = {(f.device_class, f.vendor, f.model): f.kg_co2e for f in session.exec(select(EmbodiedFactor)).all()}
    due: dict[int, list[float]] = {year: [] for year in range(first_year, first_year + years)}
    for device, asset in _assets(session, [d.id for d in devices]):
        if asset.purchase_date is None or asset.state in LEAVING:
            continue
        year = max(first_year, asset.purchase_date.year + REFRESH_YEARS.get(device.device_class,
                                                                            DEFAULT_REFRESH_YEARS))
        if year in due:
            due[year].append(_embodied(device, own))
    return [RefreshYear(year, len(kgs), sum(kgs)) for year, kgs in due.items()]


def _embodied(device: Device, own: dict[tuple[str, str, str], float]) -> float:
    for key in ((device.device_class, device.vendor or "", device.model or ""), (device.device_class, "", "")):
        if key in own:
            return own[key]
    return EMBODIED_KG.get(device.device_class, EMBODIED_KG["desktop"])
