"""UK location-based carbon factors by year: shipped DESNZ/DEFRA figures plus the user's edits.

A kgCO2e figure is only defensible with the factor and year behind it, so every lookup returns both,
and says when it fell back to an earlier year because the consumption year's factor is not published
yet. Transmission and distribution losses are a separate factor, reported separately (SECR scope 3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

import yaml
from sqlmodel import Session, select

from controller.energy.models import CarbonFactorOverride
from controller.errors import DomainError
from controller.timeutil import utcnow

SHIPPED = Path(__file__).with_name("data") / "carbon_factors.yaml"


class CarbonFactorError(ValueError, DomainError):
    """A factor a user tried to set that cannot be right."""


@dataclass(frozen=True)
class YearFactor:
    year: int
    generation: Decimal  # kgCO2e/kWh
    td: Decimal | None
    source: str


@dataclass(frozen=True)
class AppliedFactor:
    """The factor used for consumption in ``year``: from ``factor_year`` (earlier when not yet published)."""

    year: int
    factor_year: int
    kg_per_kwh: Decimal
    td_year: int | None
    td_kg_per_kwh: Decimal | None
    source: str


@dataclass(frozen=True)
class CarbonFactors:
    years: Mapping[int, YearFactor]

    def for_year(self, year: int) -> AppliedFactor:
        """The year's factor, else the latest earlier one (else the earliest there is); T&D likewise."""
        known = sorted(self.years)
        earlier = [y for y in known if y <= year]
        chosen = self.years[earlier[-1] if earlier else known[0]]
        with_td = [y for y in known if self.years[y].td is not None]
        td_earlier = [y for y in with_td if y <= year] or with_td[:1]
        td = self.years[td_earlier[-1]] if td_earlier else None
        return AppliedFactor(year, chosen.year, chosen.generation, td.year if td else None, td.td if td else None,
                             chosen.source)


def _factor(value: object, what: str) -> Decimal:
    try:
        factor = Decimal(str(value))
    except InvalidOperation:
        raise CarbonFactorError(f"{what} must be a number of kgCO2e/kWh, not {value!r}") from None
    if not factor.is_finite() or factor < 0 or factor > 2:
        raise CarbonFactorError(f"{what} must be between 0 and 2 kgCO2e/kWh, not {value}")
    return factor


@cache
def shipped() -> CarbonFactors:
    data = yaml.safe_load(SHIPPED.read_text())
    years = {}
    for year, entry in data["years"].items():
        td = entry.get("td")
        source = "; ".join(str(part) for part in (data["source"], entry.get("edition"), entry.get("url")) if part)
        years[int(year)] = YearFactor(int(year), _factor(entry["generation"], f"{year} generation"),
                                      None if td is None else _factor(td, f"{year} td"), source)
    return CarbonFactors(years)


def load(session: Session) -> CarbonFactors:
    years = dict(shipped().years)
    for row in session.exec(select(CarbonFactorOverride)):
        years[row.year] = YearFactor(row.year, Decimal(str(row.generation_kg_per_kwh)),
                                     None if row.td_kg_per_kwh is None else Decimal(str(row.td_kg_per_kwh)),
                                     row.source)
    return CarbonFactors(years)


def set_factor(session: Session, year: int, generation: float, td: float | None, source: str) -> None:
    """Store the user's factor for a year (a newly published DESNZ year, say). The caller commits."""
    if not 1990 <= year <= 2100:
        raise CarbonFactorError(f"{year} is not a plausible year")
    _factor(generation, "the generation factor")
    if td is not None:
        _factor(td, "the T&D factor")
    if not source.strip():
        raise CarbonFactorError("say where the factor comes from (--source)")
    row = session.get(CarbonFactorOverride, year) or CarbonFactorOverride(
        year=year, generation_kg_per_kwh=generation, source=source)
    row.generation_kg_per_kwh, row.td_kg_per_kwh, row.source = generation, td, source[:500]
    row.updated_at = utcnow()
    session.add(row)
