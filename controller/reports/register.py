"""The asset register as the audit pack shows it, per site: read through the lifecycle package's queries
(register and disposal-evidence completeness, devices past warranty or OS support, the refresh forecast
with embodied carbon), so the report and the console never count differently.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlmodel import Session

from controller.lifecycle import embodied, queries
from controller.lifecycle.recommend import Policy


@dataclass(frozen=True)
class RegisterStatus:
    completeness: float | None  # required register fields filled, 0..1; None with no device in service
    disposal_completeness: float | None  # disposal evidence recorded for devices leaving or gone, 0..1
    past_warranty: int
    past_os_support: int


@dataclass(frozen=True)
class RefreshYear:
    year: int
    devices: int
    embodied_kg: float


def _share(found: queries.Completeness | None) -> float | None:
    return found.filled / found.required if found is not None and found.required else None


def status_by_site(session: Session, today: date) -> dict[str, RegisterStatus]:
    register = queries.register_completeness(session)
    disposal = queries.disposal_evidence_completeness(session)
    warranty: dict[str, int] = defaultdict(int)
    os_support: dict[str, int] = defaultdict(int)
    for gap in queries.past_support(session, today):
        warranty[gap.site] += gap.warranty_passed
        os_support[gap.site] += gap.os_support_passed
    sites = {*register, *disposal, *warranty, *os_support}
    return {site: RegisterStatus(_share(register.get(site)), _share(disposal.get(site)), warranty[site],
                                 os_support[site]) for site in sites}


def refresh_forecast(session: Session, sites: Sequence[str], today: date, years: int = 5) -> list[RefreshYear]:
    """Devices of ``sites`` due for refresh in each of the next ``years`` years, with embodied carbon."""
    wanted = set(sites)
    totals = {year: [0, 0.0] for year in range(today.year, today.year + years)}
    for row in queries.refresh_forecast(session, embodied.load(session), Policy(), today, years):
        if row.site in wanted and row.year in totals:
            totals[row.year][0] += row.devices
            totals[row.year][1] += row.embodied_kg_co2e
    return [RefreshYear(year, int(n), kg) for year, (n, kg) in totals.items()]
