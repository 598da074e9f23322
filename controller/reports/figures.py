"""Sums both report kinds share: kWh, pounds and kgCO2e of a set of devices, the carbon factor for a
period, and the share of energy by method. Pure functions over ``DeviceUsage``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from controller.policy.calendar import Calendar
from controller.policy.model import Policy
from controller.reports import sources
from controller.reports.periods import Period
from controller.reports.rates import CarbonFactor, Rates
from controller.reports.usage import JOULES_PER_KWH, DeviceUsage, account, measured


@dataclass(frozen=True)
class Inputs:
    """What a report is worked out from besides the register: power policies and prices."""

    rates: Rates
    policies: tuple[Policy, ...] = ()
    calendars: Mapping[str, Calendar] | None = None

    def site_calendars(self, site: str) -> list[Calendar]:
        """The calendars of the policies that name the site (for term periods)."""
        names = [n for p in self.policies if p.power and (not p.applies_to.sites or
                 site.casefold() in {s.casefold() for s in p.applies_to.sites}) for n in p.power.calendars]
        calendars = self.calendars or {}
        return [calendars[n] for n in dict.fromkeys(names) if n in calendars]


@dataclass(frozen=True)
class Figures:
    kwh: float
    pounds: float
    kg_co2e: float


@dataclass(frozen=True)
class MethodShare:
    method: str
    measured: bool
    kwh: float
    share: float  # of all kWh, 0..1


def usage_for(session: Session, scope: sources.Scope, period: Period, inputs: Inputs) -> list[DeviceUsage]:
    sites = {s.id: s for s in scope.sites}
    buckets = sources.energy_buckets(session, scope, period.start_utc, period.end_utc)
    return account(sources.devices(session, scope), sites, buckets, inputs.rates, inputs.policies,
                   inputs.calendars)


def carbon_factor(usages: Iterable[DeviceUsage], rates: Rates, period: Period) -> CarbonFactor:
    """The factor of the calendar year holding most of the energy (DOMAIN.md: a year that does not follow
    the calendar uses the year holding most of the data); the period's first year when there is none."""
    by_year: dict[int, float] = defaultdict(float)
    for usage in usages:
        for year, joules in usage.joules_by_year.items():
            by_year[year] += joules
    year = max(by_year, key=lambda y: (by_year[y], -y)) if by_year else _most_days_year(period)
    return rates.carbon_factor(year)


def _most_days_year(period: Period) -> int:
    counts: dict[int, int] = defaultdict(int)
    for day in period.days():
        counts[day.year] += 1
    return max(counts, key=lambda y: (counts[y], -y))


def used(usages: Iterable[DeviceUsage], factor: CarbonFactor) -> Figures:
    usages = list(usages)
    kwh = sum(u.total_joules for u in usages) / JOULES_PER_KWH
    return Figures(kwh, sum(u.pence for u in usages) / 100, kwh * factor.kg_per_kwh)


def saved(usages: Iterable[DeviceUsage], factor: CarbonFactor) -> Figures:
    usages = list(usages)
    kwh = sum(u.saved_joules for u in usages) / JOULES_PER_KWH
    return Figures(kwh, sum(u.saved_pence for u in usages) / 100, kwh * factor.kg_per_kwh)


def wasted(usages: Iterable[DeviceUsage], factor: CarbonFactor) -> Figures:
    usages = list(usages)
    kwh = sum(u.waste_joules for u in usages) / JOULES_PER_KWH
    return Figures(kwh, sum(u.waste_pence for u in usages) / 100, kwh * factor.kg_per_kwh)


def method_shares(usages: Sequence[DeviceUsage]) -> list[MethodShare]:
    by_method: dict[str, float] = defaultdict(float)
    for usage in usages:
        for method, joules in usage.joules_by_method.items():
            by_method[method] += joules
    total = sum(by_method.values())
    return [MethodShare(m, measured(m), j / JOULES_PER_KWH, j / total if total else 0.0)
            for m, j in sorted(by_method.items(), key=lambda item: -item[1])]


def measured_share(shares: Iterable[MethodShare]) -> float:
    return sum(s.share for s in shares if s.measured)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M %Z")
