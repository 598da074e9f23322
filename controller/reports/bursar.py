"""The bursar report: what a site or trust used and saved over a period, in kWh, pounds and kgCO2e, where
the out-of-hours waste is, what policies keep on on purpose, what the power actions did, and three things
to do next with their annual value.

Waste counts only what a policy could remove (the energy package's ``is_waste``): what a policy keeps on
(never-power-down servers and signage, maintenance and exam windows, keep-on overrides) is reported apart
as "kept on by policy", with its kWh, and is never recommended away.

Recommendations annualise each room's waste from the days actually observed, separately for school
days and other days, because a room that wastes on weekends wastes on 170 days a year, not 195:

    annual kWh = waste on school days / school days observed × school days in the year
               + waste on other days / other days observed × other days in the year

A day is observed when the site's devices reported on it (not a day yet to come, nor one of silence).
School days in the year come from the term calendar that covers the academic year, else the English
norm of 195 (190 pupil days and 5 INSET days). Under ``PROVISIONAL_BELOW`` school days observed, the
estimate says it is provisional.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlmodel import Session

from controller import formatting as fmt
from controller.energy.carbon import AppliedFactor
from controller.energy.coverage import Coverage, coverage, days_until, first_reports, observed_days
from controller.energy.inputs import Estate
from controller.energy.insomnia import InsomniaReport, insomnia
from controller.energy.policy_hours import DEFAULT_HOURS, PolicyHours
from controller.energy.savings import (
    ActionSaving,
    SavingsError,
    SavingsSummary,
    before_after,
    savings_summary,
)
from controller.energy.school_hours import SchoolHours
from controller.policy.calendar import Calendar
from controller.power.models import WakeRequest
from controller.register.models import ActionRecord
from controller.reports import sources
from controller.reports.figures import (
    Figures,
    Inputs,
    MethodShare,
    carbon_factor,
    kept_on,
    measured_share,
    method_shares,
    unpriced_kwh,
    usage_for,
)
from controller.reports.figures import used as used_figures
from controller.reports.figures import wasted as wasted_figures
from controller.reports.periods import Period
from controller.reports.usage import DeviceUsage, merged

SCHOOL_DAYS_PER_YEAR = 195  # 190 pupil days and 5 INSET days (DOMAIN.md)
PROVISIONAL_BELOW = 10  # school days observed
TOP = 10
NO_ROOM = "(no room)"
KEPT_ON_WORDS = {"never_power_down": "never powered down", "maintenance": "maintenance window",
                 "exam_window": "exam window", "override": "keep-on override"}


@dataclass(frozen=True)
class SiteLine:
    site: str
    devices: int
    used: Figures
    saved: Figures
    would_have_saved: Figures | None = None  # what its observe-mode policy would have saved, had it acted

    @property
    def savings_note(self) -> str:
        """Why the site's savings are what they are, where a zero would otherwise stand alone."""
        if self.saved.kwh > 0 or self.would_have_saved is None:
            return "" if self.saved.kwh > 0 else "no power-downs yet"
        return f"no savings yet: observe mode; it would have saved {_figures_text(self.would_have_saved)}"


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
class KeptOnLine:
    """A device a policy keeps on on purpose, and what it drew out of hours because of it."""

    site: str
    name: str
    room: str | None
    why: str  # "never powered down; maintenance window"
    kept_on: Figures


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

    provisional: bool = False  # fewer school days observed than PROVISIONAL_BELOW

    def sentence(self) -> str:
        return (f"{self.action}: about {fmt.money_text(self.annual.pounds)} and {fmt.kg_text(self.annual.kg_co2e)} "
                f"a year ({fmt.kwh_text(self.annual.kwh)})" + (", provisional" if self.provisional else ""))


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
    kept_on: Figures  # out of hours while a policy keeps devices on on purpose: never waste
    kept_on_devices: tuple[KeptOnLine, ...]
    calendar_notes: tuple[str, ...]  # calendars that end inside the period, or sites without one
    methods: tuple[MethodShare, ...]
    measured_share: float
    coverage: tuple[Coverage, ...]  # per site: the school days the figures rest on
    would_have_saved: Figures | None  # by observe-mode policies, had they acted (None: none observed)
    sites: tuple[SiteLine, ...]
    top_devices: tuple[WasteLine, ...]
    top_rooms: tuple[WasteLine, ...]
    outcomes: tuple[OutcomeCount, ...]
    recommendations: tuple[Recommendation, ...]
    insomnia: InsomniaReport  # the waste put down to what held the machines awake


def build(session: Session, scope: sources.Scope, period: Period, inputs: Inputs, now: datetime) -> BursarReport:
    accounted = usage_for(session, scope, period, inputs, now)
    usages = accounted.usages
    used = used_figures(usages)
    savings = savings_summary(session, period.start_utc, period.end_utc, scope.site_ids, now)
    observed_savings = savings_summary(session, period.start_utc, period.end_utc, scope.site_ids, now, observed=True)
    saved = Figures(float(savings.saved_kwh), None if savings.saved_gbp is None else float(savings.saved_gbp),
                    float(savings.saved_kgco2e))
    methods = method_shares(usages)
    zones = {site.id: ZoneInfo(site.timezone) for site in scope.sites}
    observed = observed_days(session, scope.site_ids, period.start_utc, min(period.end_utc, now.astimezone(UTC)),
                             zones)
    return BursarReport(
        scope=scope.label, period=period, generated_at=now, factor=carbon_factor(accounted, period),
        tariffs=describe_tariffs(scope, accounted.estate), unpriced_kwh=unpriced_kwh(usages),
        used=used, saved=saved, baseline=used.plus(saved),
        wasted=wasted_figures(usages), kept_on=kept_on(usages), kept_on_devices=tuple(_kept_on(usages)),
        calendar_notes=tuple(calendar_notes(scope, period, inputs)),
        methods=tuple(methods), measured_share=measured_share(methods),
        coverage=tuple(_coverage(session, scope, period, accounted.hours, usages, observed, now)),
        would_have_saved=saved_figures(observed_savings.actions) if observed_savings.actions else None,
        sites=tuple(_site_lines(scope, usages, savings, observed_savings)),
        before_after=tuple(_before_after(session, scope, inputs, now)), unclaimed=tuple(savings.skipped),
        top_devices=tuple(_top(_by_device(usages))),
        top_rooms=tuple(_top(_by_room(usages))),
        outcomes=tuple(outcome_counts(sources.power_actions(session, scope, period.start_utc, period.end_utc),
                                      sources.wake_requests(session, scope, period.start_utc, period.end_utc))),
        recommendations=tuple(recommendations(usages, period, accounted.hours, observed)[:3]),
        insomnia=insomnia(session, period.start_utc, period.end_utc, scope.site_ids, inputs.policies,
                          inputs.calendars, now),
    )


def calendar_notes(scope: sources.Scope, period: Period, inputs: Inputs) -> list[str]:
    """Where the school days behind the figures were guessed: a site without a term calendar, or whose
    calendars end inside the period (the days after are unknown, which the policy engine treats as
    school days so as never to switch a lesson off)."""
    notes = []
    for site in scope.sites:
        calendars = inputs.site_calendars(site.name)
        if not calendars:
            notes.append(f"{site.name} has no term calendar: weekdays other than bank holidays were treated as "
                         "school days")
            continue
        last = max(c.covers.last for c in calendars)
        if last < period.last:
            notes.append(f"{site.name}: term dates end on {last:%d %B %Y}; later days were treated as school days")
    return notes


def describe_tariffs(scope: sources.Scope, estate: Estate) -> str:
    """Each site's tariffs by name, so the reader knows which prices the pounds use."""
    parts = []
    for site in scope.sites:
        names = [t.name for t in estate.tariffs.get(site.id, [])]
        parts.append(f"{site.name}: {', '.join(names) if names else 'no tariff set (its energy is unpriced)'}")
    return "; ".join(parts)


def _site_lines(scope: sources.Scope, usages: Sequence[DeviceUsage], savings: SavingsSummary,
                observed: SavingsSummary) -> list[SiteLine]:
    site_of = {u.device.id: u.site.id for u in usages}
    lines = []
    for site in scope.sites:
        mine = [u for u in usages if u.site.id == site.id]
        claims = [a for a in savings.actions if site_of.get(a.device_id) == site.id]
        would = [a for a in observed.actions if site_of.get(a.device_id) == site.id]
        lines.append(SiteLine(site.name, len(mine), used_figures(mine), saved_figures(claims),
                              saved_figures(would) if would else None))
    return lines


def _coverage(session: Session, scope: sources.Scope, period: Period, hours: PolicyHours,
              usages: Sequence[DeviceUsage], observed: dict[int, set[date]], now: datetime) -> list[Coverage]:
    """Each site's school days in the period so far (by its devices' policy, as annualising counts them) and
    how many its devices reported on."""
    zones = {site.id: ZoneInfo(site.timezone) for site in scope.sites}
    first = first_reports(session, scope.site_ids, zones)
    found = []
    for site in scope.sites:
        sample = next((u.device for u in usages if u.site.id == site.id), None)
        days = days_until(period.first, period.last, now, zones[site.id])
        is_school_day = ((lambda day, device=sample: hours.school_day(device, day)) if sample is not None
                         else DEFAULT_HOURS.is_school_day)
        found.append(coverage(site.name, first.get(site.id), days, observed.get(site.id, set()), is_school_day))
    return found


def _figures_text(figures: Figures) -> str:
    return f"{fmt.kwh_text(figures.kwh)} ({fmt.money_text(figures.pounds)}, {fmt.kg_text(figures.kg_co2e)})"


def saved_figures(claims: Sequence[ActionSaving]) -> Figures:
    """What power-downs saved; the pounds are None (unpriced, not £0) when no claim had a tariff."""
    priced = [a.saved_gbp for a in claims if a.saved_gbp is not None]
    return Figures(float(sum(a.saved_kwh for a in claims)), float(sum(priced)) if priced or not claims else None,
                   float(sum(a.saved_kgco2e for a in claims)))


def _kept_on(usages: Sequence[DeviceUsage]) -> list[KeptOnLine]:
    found = [KeptOnLine(u.site.name, u.device.hostname, u.device.room,
                        "; ".join(KEPT_ON_WORDS.get(r, r) for r in sorted(u.kept_on_by)), Figures.of(u.kept_on))
             for u in usages if u.kept_on.wh > 0]
    return sorted(found, key=lambda line: (-line.kept_on.kwh, line.site, line.name))


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


@dataclass(frozen=True)
class SchoolYear:
    school_days: int
    other_days: int
    basis: str  # where the number of school days comes from


def school_year(hours: PolicyHours, usage: DeviceUsage, period: Period) -> SchoolYear:
    """School days in the academic year (September to August) holding the period's start, by the device's
    own policy and the calendars that cover that whole year; else the English norm."""
    first_year = period.first.year if period.first.month >= 9 else period.first.year - 1
    start, end = date(first_year, 9, 1), date(first_year + 1, 8, 31)
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    said = hours.device(usage.device)
    calendars: tuple[Calendar, ...] = said.context.calendars if said.context is not None else ()
    if calendars and min(c.covers.first for c in calendars) <= start and max(c.covers.last for c in calendars) >= end:
        school = sum(1 for day in days if hours.school_day(usage.device, day))
        names = ", ".join(c.name for c in calendars)
        return SchoolYear(school, len(days) - school, f"{school} in {first_year}-{(first_year + 1) % 100:02d} by "
                                                          f"term calendar {names}")
    return SchoolYear(SCHOOL_DAYS_PER_YEAR, len(days) - SCHOOL_DAYS_PER_YEAR,
                      f"{SCHOOL_DAYS_PER_YEAR} in a typical English school year (no term calendar covers "
                      f"{first_year}-{(first_year + 1) % 100:02d})")


def recommendations(usages: Sequence[DeviceUsage], period: Period, hours: PolicyHours,
                    observed: dict[int, set[date]]) -> list[Recommendation]:
    """Every room that wastes energy out of hours, best annual value first."""
    found = []
    for (site, room), mine in _rooms(usages).items():
        school_total, other_total = merged([u.waste_school_days for u in mine]), merged([u.waste_other_days
                                                                                         for u in mine])
        school_kwh, other_kwh = float(school_total.wh) / 1000, float(other_total.wh) / 1000
        if school_kwh + other_kwh <= 0:
            continue
        first = mine[0]
        seen = observed.get(first.site.id, set())
        seen_school = sum(1 for day in seen if hours.school_day(first.device, day))
        seen_other = len(seen) - seen_school
        year = school_year(hours, first, period)
        annual_kwh = ((school_kwh / seen_school * year.school_days if seen_school else 0.0)
                      + (other_kwh / seen_other * year.other_days if seen_other else 0.0))
        waste = merged([school_total, other_total])
        waste_figures = Figures.of(waste)
        pence_per_kwh = None if waste_figures.pounds is None else waste_figures.pounds * 100 / waste_figures.kwh
        kg_per_kwh = waste_figures.kg_co2e / waste_figures.kwh
        annual = Figures(annual_kwh, None if pence_per_kwh is None else annual_kwh * pence_per_kwh / 100,
                         annual_kwh * kg_per_kwh)
        provisional = seen_school < PROVISIONAL_BELOW
        price = "no tariff set, so unpriced" if pence_per_kwh is None else f"× {pence_per_kwh:.1f} p/kWh"
        basis = (f"from {seen_school} school days observed of {year.basis}: "
                 f"{school_kwh:.1f} kWh idle out of hours ÷ {seen_school or '-'} × {year.school_days} "
                 f"+ {other_kwh:.1f} kWh on {seen_other} other days observed ÷ {seen_other or '-'} × "
                 f"{year.other_days} = {annual_kwh:.1f} kWh a year; {price}; × {kg_per_kwh:.5f} kgCO2e/kWh"
                 + (f"; provisional: fewer than {PROVISIONAL_BELOW} school days observed" if provisional else ""))
        found.append(Recommendation(_action(mine, site, room), site, room, annual, basis, provisional))
    return sorted(found, key=lambda r: (-(r.annual.pounds or 0.0), -r.annual.kwh, r.site, r.room))


def _action(mine: Sequence[DeviceUsage], site: str, room: str) -> str:
    where = f"{room} ({site})" if room != NO_ROOM else f"devices with no room at {site}"
    if any(u.enforcing for u in mine):
        return f"power down idle machines sooner in {where}"
    observing = sorted({u.policy for u in mine if u.policy})
    if observing:
        return f"switch policy {', '.join(observing)} from observe to enforce for {where}"
    return f"extend power-down to {where}"
