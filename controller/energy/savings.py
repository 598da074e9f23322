"""What power policy saved, two ways a bursar can check.

**Counterfactual per action.** A device a policy shut down, slept or hibernated (ActionRecord outcome
``done``) saves what it would have drawn idle from the action until ``details["until"]`` (when it is
next needed), minus what it drew asleep or off in that time. Hour by hour, only the time the device
was actually asleep or off inside that window is claimed, and only until it was next awake (its
agent's next report): a machine someone switched back on early saves nothing from then on, even
once they switch it off again. The counterfactual idle draw is the device's own (calibrated) idle watts
with its monitor asleep, so a screen that would have blanked anyway is not claimed. Devices that went
off with no policy action (a teacher switching off) are natural shutdowns and never claimed, and
overlapping actions on one device claim each second once.

**Before/after.** Against the observe-mode baseline (the days a site's policy only recorded what it
would have done, ActionRecord outcome ``observed``): out-of-hours kWh per school day before, and since
the policy first acted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import func
from sqlmodel import Session, col, select

from controller.energy.accounting import (
    DEVICE_GROUPS,
    GRAM,
    HUNDREDTH_PENNY,
    WH,
    AccountingError,
    Pricer,
    Total,
    Totals,
    energy_totals,
    jsonable,
)
from controller.energy.accounting import round_half_up as _round
from controller.energy.inputs import Estate, load_estate
from controller.energy.lines import HOUR, HourLine, estate_lines
from controller.energy.policy_hours import Label, PolicyHours, is_waste
from controller.energy.school_hours import OUT_OF_HOURS, SchoolHours
from controller.errors import DomainError
from controller.policy.calendar import Calendar
from controller.policy.model import Policy
from controller.register.models import ActionRecord, Report
from controller.register.placement import PlacementRule
from controller.timeutil import as_utc, hour_floor, utcnow

POWER_DOWN_KINDS = ("shutdown", "sleep", "hibernate")
LOW_STATES = ("sleep", "off")
# The longest a single action may claim (a summer holiday); a wrong "until" must not claim a year.
MAX_CLAIM = timedelta(days=60)


class SavingsError(ValueError, DomainError):
    """A savings question the records cannot answer (no baseline yet)."""


@dataclass
class ActionSaving:
    action_id: int
    device_id: int
    hostname: str
    kind: str
    at: datetime
    until: datetime
    idle_watts: Decimal
    counterfactual_kwh: Decimal
    actual_kwh: Decimal
    saved_kwh: Decimal
    saved_gbp: Decimal | None  # None: no tariff covers any of the hours (unpriced, never £0)
    saved_kgco2e: Decimal
    unpriced_kwh: Decimal = Decimal(0)  # saved in hours no tariff covers, left out of ``saved_gbp``


@dataclass
class SavingsSummary:
    start: datetime
    end: datetime
    actions: list[ActionSaving]
    saved_kwh: Decimal
    saved_gbp: Decimal | None  # None: none of the saved energy had a tariff (the figure says "unpriced")
    saved_kgco2e: Decimal
    skipped: list[str]  # actions that could not be claimed, and why
    unpriced_kwh: Decimal = Decimal(0)  # saved in hours no tariff covers, left out of ``saved_gbp``

    def to_json(self) -> dict[str, object]:
        return jsonable(asdict(self))


@dataclass
class _Claim:
    action: ActionRecord
    start: datetime
    end: datetime


def _until(action: ActionRecord) -> datetime | None:
    raw = (action.details or {}).get("until")
    try:
        until = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return as_utc(until) if until is not None and until.tzinfo is not None else None


def _claims(actions: Sequence[ActionRecord], start: datetime, end: datetime, skipped: list[str],
            back_on: Callable[[ActionRecord, datetime], datetime | None] = lambda action, until: None) -> list[_Claim]:
    """Each action's window, clipped to [start, end), to the moment the device was next awake (``back_on``:
    whatever it did after someone switched it back on, switching it off again included, was not the policy's
    doing) and to what earlier actions on the device claimed."""
    claims = []
    claimed_to: dict[int, datetime] = {}
    for action in sorted(actions, key=lambda a: (a.device_id, as_utc(a.at))):
        until = _until(action)
        if until is None:
            skipped.append(f"action {action.id}: no 'until' (when the device is next needed), nothing claimed")
            continue
        at = as_utc(action.at)
        window_start = max(at, start, claimed_to.get(action.device_id, at))
        window_end = min(until, at + MAX_CLAIM, end)
        window_end = min(window_end, back_on(action, window_end) or window_end)
        if window_end > window_start:
            claims.append(_Claim(action, window_start, window_end))
            claimed_to[action.device_id] = window_end
    return claims


def _back_on(session: Session, action: ActionRecord, until: datetime) -> datetime | None:
    """When the device was next awake after ``action`` (its agent's next report starts then), if before ``until``."""
    back = session.exec(select(func.min(Report.start)).where(
        Report.device_id == action.device_id, col(Report.start) > action.at, col(Report.start) < until)).one()
    return None if back is None else as_utc(back)


def savings_summary(session: Session, start: datetime, end: datetime, site_ids: Sequence[int] | None = None,
                    now: datetime | None = None, observed: bool = False) -> SavingsSummary:
    """Counterfactual savings of the policy actions whose windows fall in [start, end), up to now.

    ``observed``: what observe-mode policies would have saved had they acted, from the actions they only
    recorded: the energy the device drew awake in each window, less what it would have drawn off (the
    figure that says why savings are still zero, and what switching to enforce is worth)."""
    start, end = as_utc(start), min(as_utc(end), as_utc(now or utcnow()))
    query = select(ActionRecord).where(col(ActionRecord.kind).in_(POWER_DOWN_KINDS),
                                       ActionRecord.outcome == ("observed" if observed else "done"),
                                       col(ActionRecord.device_id).is_not(None), col(ActionRecord.at) < end,
                                       col(ActionRecord.at) >= start - MAX_CLAIM)
    if site_ids is not None:
        query = query.where(col(ActionRecord.site_id).in_(list(site_ids)))
    skipped: list[str] = []
    back_on = (lambda a, until: None) if observed else (lambda a, until: _back_on(session, a, until))
    claims = _claims(list(session.exec(query)), start, end, skipped, back_on)
    if not claims:
        return SavingsSummary(start, end, [], Decimal(0), Decimal(0), Decimal(0), skipped)
    estate = load_estate(session, {c.action.site_id for c in claims})
    estate = replace(estate, devices={c.action.device_id: estate.devices[c.action.device_id] for c in claims})
    lines = estate_lines(session, estate, min(c.start for c in claims), max(c.end for c in claims), now=end)
    return summarise_claims(claims, lines, estate, start, end, skipped, observed)


def summarise_claims(claims: Sequence[_Claim], lines: Sequence[HourLine], estate: Estate, start: datetime,
                     end: datetime, skipped: list[str], observed: bool = False) -> SavingsSummary:
    """Each claim's saved Wh hour by hour, priced and weighed as ``energy_totals`` prices used energy (a
    ``Total``), so an hour no tariff covers is unpriced here too, never £0.

    A power-down saves, for the time the device was off or asleep in its window, its idle draw (screen
    asleep) less what it drew; an observed one would have saved, for the time it stayed awake, what it drew
    less its draw when off."""
    counted: dict[tuple[int, datetime], list[HourLine]] = defaultdict(list)
    for line in lines:
        if (line.state in LOW_STATES) != observed:
            counted[line.device_id, line.hour].append(line)
    pricer = Pricer(estate)
    monitor = estate.catalogue.monitor()
    results, everything = [], Total()
    for claim in claims:
        device = estate.devices[claim.action.device_id]
        idle_watts = device.profile.idle + device.monitors * monitor.sleep
        off_watts = device.profile.off + device.monitors * monitor.off
        counterfactual_wh = actual_wh = Decimal(0)
        saved = Total()
        hour = hour_floor(claim.start)
        while hour < claim.end:
            overlap = Decimal(int((min(hour + HOUR, claim.end) - max(hour, claim.start)).total_seconds()))
            found = counted.get((device.id, hour), [])
            seconds = sum((line.seconds for line in found), Decimal(0))
            if seconds > 0:
                ratio = min(Decimal(1), overlap / seconds)
                drew = sum((line.wh for line in found), Decimal(0)) * ratio
                if observed:  # it drew ``drew`` awake; off, it would have drawn its off watts
                    would, drew = drew, off_watts * seconds * ratio / 3600
                else:  # it drew ``drew`` off; left on, it would have drawn its idle watts
                    would = idle_watts * seconds * ratio / 3600
                counterfactual_wh, actual_wh = counterfactual_wh + would, actual_wh + drew
                saved.add(would - drew, seconds * ratio, "saved", "off", pricer.rate(device.site_id, hour),
                          pricer.factor(device.site_id, hour))
            hour += HOUR
        everything.merge(saved)
        results.append(ActionSaving(
            claim.action.id, device.id, device.hostname, claim.action.kind, claim.start, claim.end, idle_watts,
            _round(counterfactual_wh / 1000, WH), _round(actual_wh / 1000, WH), _round(saved.wh / 1000, WH),
            _pounds(saved), _round(saved.grams / 1000, GRAM), _round(saved.unpriced_wh / 1000, WH)))
    return SavingsSummary(start, end, results, _round(everything.wh / 1000, WH), _pounds(everything),
                          _round(everything.grams / 1000, GRAM), skipped, _round(everything.unpriced_wh / 1000, WH))


def _pounds(total: Total) -> Decimal | None:
    """The priced hours' pounds, or None when no hour had a tariff (the energy package's rule for used)."""
    if total.wh and total.unpriced_wh == total.wh:
        return None
    return _round(total.pence / 100, HUNDREDTH_PENNY)


@dataclass
class Period:
    first_day: date
    last_day: date
    school_days: int
    out_of_hours_kwh: Decimal
    kwh_per_school_day: Decimal | None


@dataclass
class BeforeAfter:
    site: str
    baseline: Period
    after: Period
    change_kwh_per_school_day: Decimal | None
    change_percent: Decimal | None

    def to_json(self) -> dict[str, object]:
        return jsonable(asdict(self))


def _local_midnight(day: date, estate: Estate, site_id: int) -> datetime:
    return datetime.combine(day, time(0), estate.sites[site_id].zone)


def out_of_hours_period(session: Session, estate: Estate, site_id: int, first: date, last: date,
                        hours: SchoolHours, now: datetime | None = None) -> Period:
    """Out-of-hours kWh of a site over whole local days ``first``..``last``, per school day in them."""
    start, end = _local_midnight(first, estate, site_id), _local_midnight(last + timedelta(days=1), estate, site_id)
    totals = energy_totals(session, start, end, ("policy",), estate=estate, now=now,
                           classifier=hours.classifier(estate))
    wh = sum((t.wh for (label,), t in totals.groups.items() if label == OUT_OF_HOURS), Decimal(0))
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    school_days = hours.school_days(days)
    per_day = _round(wh / 1000 / school_days, WH) if school_days else None
    return Period(first, last, school_days, _round(wh / 1000, WH), per_day)


def before_after(session: Session, site_id: int, hours: SchoolHours | None = None,
                 now: datetime | None = None) -> BeforeAfter:
    """Out-of-hours kWh per school day in the observe-mode baseline, and since the policy first acted
    (whole local days, up to yesterday)."""
    hours = hours or SchoolHours()
    now = as_utc(now or utcnow())
    observed = list(session.exec(select(ActionRecord.at).where(
        ActionRecord.site_id == site_id, ActionRecord.outcome == "observed").order_by(col(ActionRecord.at))))
    if not observed:
        raise SavingsError("no observe-mode baseline: run the site's policy in observe mode first")
    estate = load_estate(session, [site_id])
    zone = estate.sites[site_id].zone
    baseline_first, baseline_last = as_utc(observed[0]).astimezone(zone).date(), \
        as_utc(observed[-1]).astimezone(zone).date()
    acted = session.exec(select(ActionRecord.at).where(
        ActionRecord.site_id == site_id, ActionRecord.outcome == "done",
        col(ActionRecord.kind).in_(POWER_DOWN_KINDS), col(ActionRecord.at) > observed[-1])
        .order_by(col(ActionRecord.at))).first()
    if acted is None:
        raise SavingsError("the policy has not acted since its observe-mode baseline")
    after_first, after_last = as_utc(acted).astimezone(zone).date(), now.astimezone(zone).date() - timedelta(days=1)
    if after_last < after_first:
        raise SavingsError("the policy first acted today: compare again tomorrow")
    baseline = out_of_hours_period(session, estate, site_id, baseline_first, baseline_last, hours, now)
    after = out_of_hours_period(session, estate, site_id, after_first, after_last, hours, now)
    change = percent = None
    if baseline.kwh_per_school_day is not None and after.kwh_per_school_day is not None:
        change = after.kwh_per_school_day - baseline.kwh_per_school_day
        if baseline.kwh_per_school_day:
            percent = _round(change * 100 / baseline.kwh_per_school_day, Decimal("0.1"))
    return BeforeAfter(estate.sites[site_id].name, baseline, after, change, percent)


@dataclass
class WasteRow:
    key: str
    idle_kwh: Decimal  # idle out of hours, outside anything a policy keeps on
    cost_gbp: Decimal | None  # None: no tariff covers these hours
    kgco2e: Decimal
    idle_hours: Decimal


def waste_by(totals: Totals) -> dict[tuple[str, ...], Total]:
    """What a power-down policy could remove (``is_waste``), by the other keys of ``totals`` (grouped by
    "policy" and "state" besides them)."""
    dims = totals.dims
    at_policy, at_state = dims.index("policy"), dims.index("state")
    found: dict[tuple[str, ...], Total] = defaultdict(Total)
    for key, total in totals.groups.items():
        if is_waste(Label.parse(key[at_policy]), key[at_state]):
            found[tuple(v for i, v in enumerate(key) if i not in (at_policy, at_state))].merge(total)
    return dict(found)


def out_of_hours_waste(session: Session, start: datetime, end: datetime, site_ids: Sequence[int] | None = None,
                       by: str = "device", limit: int = 10, policies: Sequence[Policy] = (),
                       calendars: Mapping[str, Calendar] | None = None, now: datetime | None = None,
                       placement: Sequence[PlacementRule] = ()) -> list[WasteRow]:
    """The devices (or rooms) that drew most while idle out of hours, where no policy keeps them on: where
    a power-down policy would save most. Hours are each device's policy's (controller.energy.policy_hours)."""
    if by not in DEVICE_GROUPS:
        raise AccountingError(f"cannot rank waste by {by!r}; choose one of {', '.join(DEVICE_GROUPS)}")
    estate = load_estate(session, site_ids, placement=placement)
    hours = PolicyHours(estate, policies, calendars)
    totals = energy_totals(session, start, end, (by, "policy", "state"), estate=estate, now=now,
                           classifier=hours.classifier)
    ranked = sorted(waste_by(totals).items(), key=lambda item: (-item[1].wh, item[0]))[:limit]
    return [WasteRow(key, _round(t.wh / 1000, WH), _round(t.pence / 100, HUNDREDTH_PENNY) if t.priced else None,
                     _round(t.grams / 1000, GRAM), _round(t.seconds_by_state["idle"] / 3600, Decimal("0.01")))
            for (key,), t in ranked]
