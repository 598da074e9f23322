"""The asset register as the audit pack shows it, per site: read through the lifecycle package's queries
(register and disposal-evidence completeness, devices past warranty or OS support, the refresh forecast
with embodied carbon), so the report and the console never count differently.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlmodel import Session

from controller.lifecycle import embodied, queries
from controller.lifecycle.recommend import CONSIDERED, Policy, os_end


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
    # queries.past_support's rule, over an aware instant: it builds a naive one, which the database refuses.
    policy = Policy()
    for facts in queries.device_facts(session, embodied.Factors({}, {}), datetime.combine(today, time(), UTC)):
        if facts.state in CONSIDERED:
            warranty[facts.site] += facts.warranty_end is not None and facts.warranty_end < today
            ended = os_end(facts, policy)
            os_support[facts.site] += ended is not None and ended < today
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
