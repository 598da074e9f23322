"""What both report kinds share: each device's usage over a period (``usage_for``: the energy package's
one total, labelled by the policy engine), and pure sums over it: kWh, pounds and kgCO2e, the carbon
factor a report names, and the share of energy by method.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from controller.energy.accounting import Total
from controller.energy.carbon import AppliedFactor
from controller.energy.inputs import Estate, load_estate
from controller.energy.policy_hours import PolicyHours
from controller.policy.calendar import Calendar
from controller.policy.model import Policy
from controller.register.placement import PlacementRule
from controller.reports import sources
from controller.reports.periods import Period
from controller.reports.usage import DeviceUsage, measured, merged
from controller.reports.usage import usage_for as device_usages


@dataclass(frozen=True)
class Inputs:
    """What a report is worked out from besides the register: power policies and their calendars."""

    policies: tuple[Policy, ...] = ()
    calendars: Mapping[str, Calendar] | None = None
    placement: tuple[PlacementRule, ...] = ()  # rooms and tags by rule, as the schedules see them

    def site_calendars(self, site: str) -> list[Calendar]:
        """The calendars of the policies that name the site (for term periods)."""
        names = [n for p in self.policies if p.power and (not p.applies_to.sites or
                 site.casefold() in {s.casefold() for s in p.applies_to.sites}) for n in p.power.calendars]
        calendars = self.calendars or {}
        return [calendars[n] for n in dict.fromkeys(names) if n in calendars]


@dataclass(frozen=True)
class Accounted:
    """A period's device figures, the estate (factors, tariffs) they were priced with, and the policy
    engine's view of each device (its winning policy, its school days)."""

    usages: list[DeviceUsage]
    estate: Estate
    hours: PolicyHours


@dataclass(frozen=True)
class Figures:
    kwh: float
    pounds: float | None  # None: none of the energy had a tariff (not £0)
    kg_co2e: float

    @classmethod
    def of(cls, total: Total) -> Figures:
        unpriced = total.wh > 0 and total.unpriced_wh == total.wh
        return cls(float(total.wh) / 1000, None if unpriced else float(total.pence) / 100, float(total.grams) / 1000)

    def plus(self, other: Figures) -> Figures:
        pounds = None if self.pounds is None and other.pounds is None else (self.pounds or 0.0) + (other.pounds or 0.0)
        return Figures(self.kwh + other.kwh, pounds, self.kg_co2e + other.kg_co2e)


@dataclass(frozen=True)
class MethodShare:
    method: str
    measured: bool
    kwh: float
    share: float  # of all kWh, 0..1


def usage_for(session: Session, scope: sources.Scope, period: Period, inputs: Inputs, now: datetime) -> Accounted:
    estate = load_estate(session, scope.site_ids, placement=inputs.placement)
    hours = PolicyHours(estate, inputs.policies, inputs.calendars)
    usages = device_usages(session, estate, hours, {s.id: s for s in scope.sites}, period.start_utc,
                           period.end_utc, now)
    return Accounted(usages, estate, hours)


def carbon_factor(accounted: Accounted, period: Period) -> AppliedFactor:
    """The factor of the local calendar year holding most of the energy (DOMAIN.md: a year that does not
    follow the calendar uses the year holding most of the data); the period's main year when there is none.
    Each hour's carbon is still at its own year's factor (the energy package's rule); this is the factor a
    report names, and the one the prior year is restated with."""
    by_year: dict[int, float] = defaultdict(float)
    for usage in accounted.usages:
        for year, kwh in usage.kwh_by_year.items():
            by_year[year] += kwh
    year = max(by_year, key=lambda y: (by_year[y], -y)) if by_year else _most_days_year(period)
    return accounted.estate.factors.for_year(year)


def _most_days_year(period: Period) -> int:
    counts: dict[int, int] = defaultdict(int)
    for day in period.days():
        counts[day.year] += 1
    return max(counts, key=lambda y: (counts[y], -y))


def used(usages: Iterable[DeviceUsage]) -> Figures:
    return Figures.of(merged([u.used for u in usages]))


def wasted(usages: Iterable[DeviceUsage]) -> Figures:
    return Figures.of(merged([u.waste for u in usages]))


def kept_on(usages: Iterable[DeviceUsage]) -> Figures:
    return Figures.of(merged([u.kept_on for u in usages]))


def unpriced_kwh(usages: Iterable[DeviceUsage]) -> float:
    return float(sum((u.used.unpriced_wh for u in usages), 0)) / 1000


def method_shares(usages: Sequence[DeviceUsage]) -> list[MethodShare]:
    by_method: dict[str, float] = defaultdict(float)
    for usage in usages:
        for method, kwh in usage.kwh_by_method.items():
            by_method[method] += kwh
    total = sum(by_method.values())
    return [MethodShare(m, measured(m), kwh, kwh / total if total else 0.0)
            for m, kwh in sorted(by_method.items(), key=lambda item: -item[1])]


def measured_share(shares: Iterable[MethodShare]) -> float:
    return sum(s.share for s in shares if s.measured)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M %Z")
