"""The audit pack for a trust or local authority: SECR-ready electricity figures, standards status per site,
ICT value for money, and every policy change in the period.

SECR asks for UK kWh, location-based tCO2e with the factor used, an intensity ratio, the methodology and
the prior year. The prior year is restated with this year's factor, so a change in the grid's factor is
not mistaken for a saving. The methodology note is written from the methods that produced the figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from agent.protocol import PowerMethod
from controller.energy.carbon import AppliedFactor
from controller.lifecycle import embodied, rightsize, utilisation
from controller.lifecycle.recommend import Policy as LifecyclePolicy
from controller.reports import register, sources
from controller.reports.figures import Figures, Inputs, MethodShare, carbon_factor, method_shares, usage_for
from controller.reports.figures import used as used_figures
from controller.reports.periods import Period
from controller.reports.usage import DeviceUsage

METHOD_WORDS: dict[str, str] = {
    PowerMethod.METERED: "metered at the socket or PDU",
    PowerMethod.RAPL: "measured by the processor's RAPL counters (CPU and memory, scaled to the wall)",
    PowerMethod.BATTERY: "measured from the laptop battery's discharge",
    PowerMethod.MODEL: "estimated from the device's power model (watts by state × time in each state)",
    "attributed": "attributed to sleep or off for time the device did not report, at its power model's watts",
}


@dataclass(frozen=True)
class SecrLine:
    site: str
    pupils: int | None
    devices: int
    kwh: float
    t_co2e: float
    kwh_per_pupil: float | None
    kg_per_pupil: float | None
    kwh_per_device: float | None
    prior_kwh: float
    prior_t_co2e_restated: float  # prior year's kWh × this year's factor


@dataclass(frozen=True)
class StandardsLine:
    site: str
    devices: int
    enforcing_share: float | None  # devices a policy powers down automatically (not observe)
    register: register.RegisterStatus
    measured_share: float  # of the site's kWh: energy-efficiency data from measurement rather than a model


@dataclass(frozen=True)
class ValueLine:
    site: str
    device_years: float
    kwh_per_device_year: float | None
    pounds_per_device_year: float | None
    hours_per_week: float | None  # mean hours in use per school week (controller.lifecycle.utilisation)
    underused: int  # in use under the threshold: proposed for redeployment


@dataclass(frozen=True)
class PolicyChange:
    at: datetime
    actor: str
    action: str
    policy: str
    what: str


@dataclass(frozen=True)
class AuditPack:
    trust: str
    period: Period
    prior: Period
    generated_at: datetime
    factor: AppliedFactor
    prior_factor: AppliedFactor  # the factor the prior year was first reported with
    used: Figures
    prior_kwh: float
    prior_kg_as_reported: float  # at its own years' factors
    methods: tuple[MethodShare, ...]
    methodology: str
    secr: tuple[SecrLine, ...]
    standards: tuple[StandardsLine, ...]
    value: tuple[ValueLine, ...]
    utilisation: utilisation.Utilisation  # over the period's school weeks
    servers: rightsize.Rightsizing  # the period's last days of server reports
    refresh: tuple[register.RefreshYear, ...]
    policy_changes: tuple[PolicyChange, ...]


def build(session: Session, scope: sources.Scope, period: Period, inputs: Inputs, now: datetime) -> AuditPack:
    accounted = usage_for(session, scope, period, inputs, now)
    prior = period.year_before()
    prior_accounted = usage_for(session, scope, prior, inputs, now)
    usages, prior_usages = accounted.usages, prior_accounted.usages
    factor = carbon_factor(accounted, period)
    prior_factor = carbon_factor(prior_accounted, prior)
    methods = method_shares(usages)
    today = now.astimezone(period.start.tzinfo).date()
    end = min(now, period.end_utc)
    site_ids = [s.id for s in scope.sites]
    use = utilisation.utilisation(session, embodied.load(session), end - timedelta(microseconds=1),
                                  LifecyclePolicy().underused_hours_per_week, utilisation.MOST_WEEKS,
                                  policies=inputs.policies, calendars=inputs.calendars, site_ids=site_ids,
                                  since=period.first)
    return AuditPack(
        trust=scope.label, period=period, prior=prior, generated_at=now, factor=factor, prior_factor=prior_factor,
        used=used_figures(usages), prior_kwh=used_figures(prior_usages).kwh,
        prior_kg_as_reported=used_figures(prior_usages).kg_co2e,
        methods=tuple(methods), methodology=methodology(scope, period, prior, usages, methods, factor),
        secr=tuple(_secr(scope, usages, prior_usages, factor)),
        standards=tuple(_standards(session, scope, usages, today)),
        value=tuple(_value(scope, usages, period, use)),
        utilisation=use,
        servers=rightsize.rightsize(session, end, site_ids=site_ids),
        refresh=tuple(register.refresh_forecast(session, [s.name for s in scope.sites], today)),
        policy_changes=tuple(_changes(session, period)),
    )


def restated_tonnes(kwh: float, factor: AppliedFactor) -> float:
    """A prior year's kWh at this year's factor, in tonnes (the restatement SECR asks for)."""
    return kwh * float(factor.kg_per_kwh) / 1000


def _per_site(scope: sources.Scope, usages: Sequence[DeviceUsage]):
    for site in scope.sites:
        yield site, [u for u in usages if u.site.id == site.id]


def _secr(scope: sources.Scope, usages: Sequence[DeviceUsage], prior_usages: Sequence[DeviceUsage],
          factor: AppliedFactor) -> list[SecrLine]:
    lines = []
    for site, mine in _per_site(scope, usages):
        figures = used_figures(mine)
        prior_kwh = used_figures([u for u in prior_usages if u.site.id == site.id]).kwh
        pupils = site.pupils or None
        lines.append(SecrLine(
            site.name, pupils, len(mine), figures.kwh, figures.kg_co2e / 1000,
            figures.kwh / pupils if pupils else None, figures.kg_co2e / pupils if pupils else None,
            figures.kwh / len(mine) if mine else None, prior_kwh, restated_tonnes(prior_kwh, factor)))
    return lines


def _standards(session: Session, scope: sources.Scope, usages: Sequence[DeviceUsage], today) -> list[StandardsLine]:
    lines = []
    statuses = register.status_by_site(session, today)
    for site, mine in _per_site(scope, usages):
        lines.append(StandardsLine(
            site.name, len(mine), sum(u.enforcing for u in mine) / len(mine) if mine else None,
            statuses.get(site.name, register.RegisterStatus(None, None, 0, 0)),
            sum(s.share for s in method_shares(mine) if s.measured)))
    return lines


def _value(scope: sources.Scope, usages: Sequence[DeviceUsage], period: Period,
           use: utilisation.Utilisation) -> list[ValueLine]:
    lines = []
    years = period.hours / 8760
    for site, mine in _per_site(scope, usages):
        device_years = len(mine) * years
        figures = used_figures(mine)
        weekly = [u.hours_per_week for u in use.devices if u.site == site.name and u.hours_per_week is not None]
        lines.append(ValueLine(site.name, device_years,
                               figures.kwh / device_years if device_years else None,
                               figures.pounds / device_years if device_years and figures.pounds is not None
                               else None,
                               float(sum(weekly)) / len(weekly) if weekly else None,
                               sum(1 for r in use.redeploy if r.site == site.name)))
    return lines


def _changes(session: Session, period: Period) -> list[PolicyChange]:
    return [PolicyChange(c.at, c.actor, c.action, c.object_id, _what(c.before, c.after))
            for c in sources.policy_changes(session, period.start_utc, period.end_utc)]


def _what(before: dict | None, after: dict | None) -> str:
    """The policy store's own summary of an edit, else the fields that changed ("mode: observe → force")."""
    before, after = before or {}, after or {}
    if after.get("summary"):
        return str(after["summary"])
    keys = [k for k in dict.fromkeys([*before, *after]) if before.get(k) != after.get(k)]
    return "; ".join(f"{k}: {before.get(k, '—')} → {after.get(k, '—')}" for k in keys) or "no field changed"


def methodology(scope: sources.Scope, period: Period, prior: Period, usages: Sequence[DeviceUsage],
                methods: Sequence[MethodShare], factor: AppliedFactor) -> str:
    """The methodology paragraph, from the methods and factor actually used."""
    with_energy = sum(1 for u in usages if u.total_kwh > 0)
    parts = [f"Electricity used by {with_energy} ICT devices at {len(scope.sites)} site(s) of {scope.label}, "
             f"{period.describe()}, summed from hourly energy reported by each device."]
    if methods:
        parts.append("Of the kWh reported: " + "; ".join(
            f"{s.share:.1%} {METHOD_WORDS.get(s.method, s.method)}" for s in methods) + ".")
    else:
        parts.append("No energy was reported in the period.")
    years = sorted({y for u in usages for y, kwh in u.kwh_by_year.items() if kwh > 0})
    parts.append(f"Emissions are location-based, from {factor.source}, each hour at the factor for the year it "
                 f"falls in ({', '.join(str(y) for y in years) or factor.year}); the main year, {factor.year}, "
                 f"uses {factor.kg_per_kwh} kgCO2e/kWh (published for {factor.factor_year}).")
    parts.append(f"The prior year ({prior.label}) is restated with the same factor so that the change shown is a "
                 "change in use, not in the grid.")
    without = [s.name for s in scope.sites if not s.pupils]
    parts.append("Intensity per pupil uses each site's pupil number on roll"
                 + (f"; none is held for {', '.join(without)}, so it has no per-pupil figure." if without else "."))
    return " ".join(parts)
