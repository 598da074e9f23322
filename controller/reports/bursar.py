"""The bursar report: what a site or trust used and saved over a period, in kWh, pounds and kgCO2e, where
the out-of-hours waste is, what the power actions did, and three things to do next with their annual value.

Recommendations annualise each room's out-of-hours idle energy separately over school days and other
days, because a room that wastes on weekends wastes on 170 days a year, not 195:

    annual kWh = waste on school days / school days in period × 195
               + waste on other days / other days in period × 170
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlmodel import Session

from controller.energy.carbon import AppliedFactor
from controller.energy.inputs import Estate
from controller.energy.savings import SavingsError, SavingsSummary, before_after, savings_summary
from controller.energy.school_hours import SchoolHours
from controller.policy.walltime import zone
from controller.power.models import WakeRequest
from controller.register.models import ActionRecord
from controller.reports import sources
from controller.reports.figures import (
    Figures,
    Inputs,
    MethodShare,
    carbon_factor,
    measured_share,
    method_shares,
    unpriced_kwh,
    usage_for,
)
from controller.reports.figures import used as used_figures
from controller.reports.figures import wasted as wasted_figures
from controller.reports.periods import Period
from controller.reports.usage import DeviceUsage, day_counts

SCHOOL_DAYS_PER_YEAR = 195  # 190 pupil days and 5 INSET days (DOMAIN.md)
OTHER_DAYS_PER_YEAR = 365 - SCHOOL_DAYS_PER_YEAR
TOP = 10
NO_ROOM = "(no room)"


@dataclass(frozen=True)
class SiteLine:
    site: str
    devices: int
    used: Figures
    saved: Figures


@dataclass(frozen=True)
class BeforeAfterLine:
    """Out-of-hours kWh per school day before power-down acted (observe mode) and since (energy package)."""

    site: str
    baseline_kwh_per_school_day: float | None
    after_kwh_per_school_day: float | None
    change_percent: float | None
    note: str  # the days compared, or why there is no comparison yet


@dataclass(frozen=True)
class WasteLine:
    """Out-of-hours idle energy of one device or one room."""

    site: str
    name: str
    devices: int
    waste: Figures


@dataclass(frozen=True)
class OutcomeCount:
    kind: str
    outcome: str
    count: int


@dataclass(frozen=True)
class Recommendation:
    action: str  # "extend power-down to Library (Northgate Academy)"
    site: str
    room: str
    annual: Figures
    basis: str  # the arithmetic, in words a bursar can check

    def sentence(self) -> str:
        return (f"{self.action}: about £{self.annual.pounds:,.0f} and {self.annual.kg_co2e:,.0f} kgCO2e a year "
                f"({self.annual.kwh:,.0f} kWh)")


@dataclass(frozen=True)
class BursarReport:
    scope: str
    period: Period
    generated_at: datetime
    factor: AppliedFactor  # the factor of the year holding most of the energy
    tariffs: str
    unpriced_kwh: float  # energy in hours no tariff covers, left out of the pounds
    used: Figures
    saved: Figures
    baseline: Figures  # used + saved: what the estate would have used without power management
    before_after: tuple[BeforeAfterLine, ...]
    unclaimed: tuple[str, ...]  # power-downs no saving was claimed for, and why
    wasted: Figures
    methods: tuple[MethodShare, ...]
    measured_share: float
    sites: tuple[SiteLine, ...]
    top_devices: tuple[WasteLine, ...]
    top_rooms: tuple[WasteLine, ...]
    outcomes: tuple[OutcomeCount, ...]
    recommendations: tuple[Recommendation, ...]


def build(session: Session, scope: sources.Scope, period: Period, inputs: Inputs, now: datetime) -> BursarReport:
    accounted = usage_for(session, scope, period, inputs, now)
    usages = accounted.usages
    used = used_figures(usages)
    savings = savings_summary(session, period.start_utc, period.end_utc, scope.site_ids, now)
    saved = Figures(float(savings.saved_kwh), float(savings.saved_gbp), float(savings.saved_kgco2e))
    methods = method_shares(usages)
    return BursarReport(
        scope=scope.label, period=period, generated_at=now, factor=carbon_factor(accounted, period),
        tariffs=describe_tariffs(scope, accounted.estate), unpriced_kwh=unpriced_kwh(usages),
        used=used, saved=saved, baseline=Figures(used.kwh + saved.kwh, used.pounds + saved.pounds,
                                                 used.kg_co2e + saved.kg_co2e),
        wasted=wasted_figures(usages), methods=tuple(methods), measured_share=measured_share(methods),
        sites=tuple(_site_lines(scope, usages, savings)),
        before_after=tuple(_before_after(session, scope, inputs, now)), unclaimed=tuple(savings.skipped),
        top_devices=tuple(_top(_by_device(usages))),
        top_rooms=tuple(_top(_by_room(usages))),
        outcomes=tuple(outcome_counts(sources.power_actions(session, scope, period.start_utc, period.end_utc),
                                      sources.wake_requests(session, scope, period.start_utc, period.end_utc))),
        recommendations=tuple(recommendations(usages, period)[:3]),
    )


def describe_tariffs(scope: sources.Scope, estate: Estate) -> str:
    """Each site's tariffs by name, so the reader knows which prices the pounds use."""
    parts = []
    for site in scope.sites:
        names = [t.name for t in estate.tariffs.get(site.id, [])]
        parts.append(f"{site.name}: {', '.join(names) if names else 'no tariff set (its energy is unpriced)'}")
    return "; ".join(parts)


def _site_lines(scope: sources.Scope, usages: Sequence[DeviceUsage], savings: SavingsSummary) -> list[SiteLine]:
    site_of = {u.device.id: u.site.id for u in usages}
    lines = []
    for site in scope.sites:
        mine = [u for u in usages if u.site.id == site.id]
        claims = [a for a in savings.actions if site_of.get(a.device_id) == site.id]
        saved = Figures(float(sum(a.saved_kwh for a in claims)), float(sum(a.saved_gbp for a in claims)),
                        float(sum(a.saved_kgco2e for a in claims)))
        lines.append(SiteLine(site.name, len(mine), used_figures(mine), saved))
    return lines


def _before_after(session: Session, scope: sources.Scope, inputs: Inputs, now: datetime) -> list[BeforeAfterLine]:
    """Each site's out-of-hours kWh per school day, observe-mode baseline against since the policy acted."""
    lines = []
    for site in scope.sites:
        hours = SchoolHours(calendars=tuple(inputs.site_calendars(site.name)))
        try:
            found = before_after(session, site.id, hours, now)
        except SavingsError as exc:
            lines.append(BeforeAfterLine(site.name, None, None, None, str(exc)))
            continue
        lines.append(BeforeAfterLine(site.name, _float(found.baseline.kwh_per_school_day),
                                     _float(found.after.kwh_per_school_day), _float(found.change_percent),
                                     f"baseline {found.baseline.first_day} to {found.baseline.last_day}, "
                                     f"after {found.after.first_day} to {found.after.last_day}"))
    return lines


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _by_device(usages: Sequence[DeviceUsage]) -> list[WasteLine]:
    return [WasteLine(u.site.name, u.device.hostname, 1, wasted_figures([u])) for u in usages]


def _rooms(usages: Sequence[DeviceUsage]) -> dict[tuple[str, str], list[DeviceUsage]]:
    rooms: dict[tuple[str, str], list[DeviceUsage]] = defaultdict(list)
    for usage in usages:
        rooms[(usage.site.name, usage.device.room or NO_ROOM)].append(usage)
    return rooms


def _by_room(usages: Sequence[DeviceUsage]) -> list[WasteLine]:
    return [WasteLine(site, room, len(mine), wasted_figures(mine))
            for (site, room), mine in _rooms(usages).items()]


def _top(lines: list[WasteLine]) -> list[WasteLine]:
    return sorted((line for line in lines if line.waste.kwh > 0), key=lambda line: (-line.waste.kwh, line.name))[:TOP]


def outcome_counts(actions: Sequence[ActionRecord], wakes: Sequence[WakeRequest]) -> list[OutcomeCount]:
    """Power-downs by logged outcome; wakes once each, by the status they ended in."""
    counts = Counter((a.kind, a.outcome) for a in actions)
    counts.update(("wake", w.status) for w in wakes)
    return [OutcomeCount(kind, outcome, n) for (kind, outcome), n in sorted(counts.items())]


def recommendations(usages: Sequence[DeviceUsage], period: Period) -> list[Recommendation]:
    """Every room that wastes energy out of hours, best annual value first."""
    found = []
    days = period.days()
    for (site, room), mine in _rooms(usages).items():
        school_kwh = sum(u.waste_kwh_school_days for u in mine)
        other_kwh = sum(u.waste_kwh_other_days for u in mine)
        if school_kwh + other_kwh <= 0:
            continue
        counts = day_counts(days, mine[0].ctx, zone(mine[0].site.timezone))
        annual_kwh = ((school_kwh / counts.school_days * SCHOOL_DAYS_PER_YEAR if counts.school_days else 0.0)
                      + (other_kwh / counts.other_days * OTHER_DAYS_PER_YEAR if counts.other_days else 0.0))
        waste_kwh = school_kwh + other_kwh
        pence_per_kwh = sum(u.waste_pence for u in mine) / waste_kwh
        kg_per_kwh = sum(u.waste_kg for u in mine) / waste_kwh
        annual = Figures(annual_kwh, annual_kwh * pence_per_kwh / 100, annual_kwh * kg_per_kwh)
        basis = (f"{school_kwh:.1f} kWh idle out of hours on {counts.school_days} school days "
                 f"× {SCHOOL_DAYS_PER_YEAR}/{counts.school_days or '-'} + {other_kwh:.1f} kWh on "
                 f"{counts.other_days} other days × {OTHER_DAYS_PER_YEAR}/{counts.other_days or '-'} "
                 f"= {annual_kwh:.1f} kWh a year; × {pence_per_kwh:.1f} p/kWh; "
                 f"× {kg_per_kwh:.5f} kgCO2e/kWh")
        found.append(Recommendation(_action(mine, site, room), site, room, annual, basis))
    return sorted(found, key=lambda r: (-r.annual.pounds, r.site, r.room))


def _action(mine: Sequence[DeviceUsage], site: str, room: str) -> str:
    where = f"{room} ({site})" if room != NO_ROOM else f"devices with no room at {site}"
    if any(u.enforcing for u in mine):
        return f"power down idle machines sooner in {where}"
    observing = sorted({u.policy for u in mine if u.policy})
    if observing:
        return f"switch policy {', '.join(observing)} from observe to enforce for {where}"
    return f"extend power-down to {where}"
