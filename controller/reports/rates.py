"""The prices and factors a report turns kWh into: pence, kgCO2e, and the idle draw a saving is measured from.

Reports take a ``Rates`` so the arithmetic can be checked against hand-computed figures and so the
energy package's tariffs and factors plug in without the reports knowing where they come from.
``FlatRates`` is the stand-in: one price per kWh for every site and hour, and DESNZ location-based
factors (DOMAIN.md) by the year the consumption falls in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

# DESNZ/DEFRA UK electricity, generation, location-based kgCO2e/kWh (DOMAIN.md: Cost and carbon).
DESNZ_GENERATION = {2022: 0.19338, 2023: 0.20707, 2024: 0.20705, 2025: 0.17700}
DESNZ_SOURCE = "DESNZ/DEFRA GHG conversion factors, UK electricity generation, location-based"
# Idle draw when a device has not measured its own (DOMAIN.md: Power draw, lower-middle of each range).
IDLE_WATTS = {"desktop": 50.0, "laptop": 15.0, "server": 100.0, "unknown": 50.0}


@dataclass(frozen=True)
class CarbonFactor:
    year: int
    kg_per_kwh: float
    source: str


class Rates(Protocol):
    def pence_per_kwh(self, site_id: int, hour: datetime) -> float: ...

    def carbon_factor(self, year: int) -> CarbonFactor: ...

    def idle_watts(self, device_class: str) -> float: ...

    def describe_tariff(self) -> str: ...


@dataclass(frozen=True)
class FlatRates:
    pence: float = 30.2  # the 2023-24 relief threshold (DOMAIN.md), a fair school price
    factors: Mapping[int, float] = field(default_factory=lambda: dict(DESNZ_GENERATION))
    idle: Mapping[str, float] = field(default_factory=lambda: dict(IDLE_WATTS))

    def pence_per_kwh(self, site_id: int, hour: datetime) -> float:
        return self.pence

    def carbon_factor(self, year: int) -> CarbonFactor:
        """The year's factor; beyond the table, the nearest year published (said in the source)."""
        if year in self.factors:
            return CarbonFactor(year, self.factors[year], f"{DESNZ_SOURCE} {year}")
        nearest = min(self.factors, key=lambda y: abs(y - year))
        return CarbonFactor(year, self.factors[nearest], f"{DESNZ_SOURCE} {nearest} (latest for {year})")

    def idle_watts(self, device_class: str) -> float:
        return self.idle.get(device_class, self.idle["unknown"])

    def describe_tariff(self) -> str:
        return f"a flat {self.pence:g} p/kWh"
