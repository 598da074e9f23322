"""What the console's pages show, read from the register, energy buckets and logs, limited to the sites
the principal may see. Plain functions over a database session; the page routes only render them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from controller import formatting as fmt
from controller.energy.accounting import energy_totals
from controller.energy.coverage import Coverage, coverage, days_until, first_reports, observed_days
from controller.energy.lines import ATTRIBUTED
from controller.energy.savings import SavingsSummary, savings_summary
from controller.energy.school_hours import SchoolHours
from controller.estate.summary import DEVICE_STATES, FRESH_INTERVALS, _latest_reports, device_state, power_now
from controller.register.facts import labels
from controller.register.labels import placed_devices
from controller.register.models import ActionRecord, ChangeRecord, Device, Site
from controller.register.placement import PlacementRule
from controller.reports.figures import Inputs
from controller.web.accounts import Principal
from controller.web.chart import Bar


def visible_sites(session: Session, principal: Principal) -> list[Site]:
    sites = session.exec(select(Site).order_by(Site.name)).all()
    return [s for s in sites if principal.may_see(s.id)]


def device_site(session: Session, device_id: int) -> Site:
    return session.exec(select(Site).join(Device, col(Device.site_id) == col(Site.id))
                        .where(Device.id == device_id)).one()


def week_start(now: datetime, zone: ZoneInfo) -> datetime:
    """Monday 00:00 in the site's own time zone, so a week means what the school means by it."""
    local = now.astimezone(zone)
    return (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class SiteLine:
    id: int
    name: str
    devices: Counter = field(default_factory=Counter)  # device state -> count
    watts: float = 0.0
    week_kwh: float = 0.0
    saved_kwh: float = 0.0  # this week, by the power-downs policies carried out (controller.energy.savings)
    saved_gbp: float | None = 0.0  # None: no tariff covers the hours saved (unpriced, never £0)
    saved_kgco2e: float = 0.0
    would_kwh: float = 0.0  # what its observe-mode policies would have saved this week, had they acted
    would_gbp: float | None = 0.0
    would_kgco2e: float = 0.0
    coverage: Coverage | None = None  # this week's school days so far, and how many its devices reported on

    @property
    def total(self) -> int:
        return sum(self.devices.values())

    @property
    def savings_reason(self) -> str:
        """Why this week's saving is zero, where it is."""
        if self.saved_kwh > 0:
            return ""
        if self.would_kwh > 0:
            return (f"no savings yet: observe mode; it would have saved {fmt.kwh_text(self.would_kwh)} "
                    f"({fmt.money_text(self.would_gbp)})")
        return "no power-downs yet"


@dataclass(frozen=True)
class Overview:
    sites: list[SiteLine]
    states: tuple[str, ...] = DEVICE_STATES

    def total(self, attribute: str) -> float | None:
        """The sites' sum; None when every site's figure is None (money nobody's tariff prices)."""
        known = [v for v in (getattr(s, attribute) for s in self.sites) if v is not None]
        return sum(known) if known or not self.sites else None

    def devices(self, state: str) -> int:
        return sum(s.devices[state] for s in self.sites)

    @property
    def observing(self) -> bool:
        """Nothing saved anywhere, but observe-mode policies recorded what they would have done."""
        return not self.total("saved_kwh") and bool(self.total("would_kwh"))


def overview(session: Session, principal: Principal, now: datetime, report_interval_seconds: int,
             inputs: Inputs | None = None) -> Overview:
    """``inputs``: the policies in force, whose calendars say which days this week were school days."""
    inputs = inputs or Inputs()
    sites = {s.id: s for s in visible_sites(session, principal)}
    lines = {site_id: SiteLine(site_id, s.name) for site_id, s in sites.items()}
    zones = {site_id: ZoneInfo(s.timezone) for site_id, s in sites.items()}
    latest = _latest_reports(session)
    fresh = timedelta(seconds=FRESH_INTERVALS * report_interval_seconds)
    for device_id, site_id in session.exec(select(Device.id, Device.site_id)).all():
        if site_id not in lines:
            continue
        report = latest.get(device_id)
        lines[site_id].devices[device_state(report, now, report_interval_seconds)] += 1
        lines[site_id].watts += power_now(report, now, fresh) or 0.0
    first = first_reports(session, list(lines), zones)
    for site_id, line in lines.items():
        monday = week_start(now, zones[site_id])
        week = energy_totals(session, monday, now, ("site",), site_ids=[site_id], now=now)
        line.week_kwh = float(week.total.wh) / 1000
        saved = savings_summary(session, monday, now, [site_id], now=now)
        line.saved_kwh, line.saved_gbp, line.saved_kgco2e = _floats(saved)
        if not saved.actions:
            line.would_kwh, line.would_gbp, line.would_kgco2e = _floats(
                savings_summary(session, monday, now, [site_id], now=now, observed=True))
        observed = observed_days(session, [site_id], monday, now, zones).get(site_id, set())
        hours = SchoolHours(calendars=tuple(inputs.site_calendars(line.name)))
        line.coverage = coverage(line.name, first.get(site_id), days_until(monday.date(), now.astimezone(
            zones[site_id]).date(), now, zones[site_id]), observed, hours.is_school_day)
    return Overview(list(lines.values()))


def _floats(saved: SavingsSummary) -> tuple[float, float | None, float]:
    return (float(saved.saved_kwh), None if saved.saved_gbp is None else float(saved.saved_gbp),
            float(saved.saved_kgco2e))


@dataclass(frozen=True)
class DeviceFilter:
    q: str = ""
    site: str = ""
    device_class: str = ""
    state: str = ""
    room: str = ""
    tag: str = ""


@dataclass(frozen=True)
class DeviceItem:
    id: int
    hostname: str
    site: str
    device_class: str
    room: str | None
    model: str
    state: str
    last_seen: datetime | None
    tags: tuple[str, ...] = ()


def find_devices(session: Session, principal: Principal, wanted: DeviceFilter, now: datetime,
                 report_interval_seconds: int, limit: int = 500, rules: Sequence[PlacementRule] = ()
                 ) -> list[DeviceItem]:
    """The devices the filter names; room and tags as the register resolves them with ``rules``."""
    query = select(Device, Site).join(Site, col(Site.id) == col(Device.site_id))
    if principal.site_ids is not None:
        query = query.where(col(Device.site_id).in_(principal.site_ids))
    if wanted.q:
        like = f"%{wanted.q.strip()}%"
        query = query.where(col(Device.hostname).ilike(like) | col(Device.serial).ilike(like)
                            | col(Device.model).ilike(like))
    if wanted.site:
        query = query.where(Site.name == wanted.site)
    if wanted.device_class:
        query = query.where(Device.device_class == wanted.device_class)
    latest = _latest_reports(session)
    items = []
    for device, site in session.exec(query.order_by(Site.name, Device.hostname, Device.id)).all():
        state = device_state(latest.get(device.id), now, report_interval_seconds)
        if wanted.state and state != wanted.state:
            continue
        placed = labels(device, site, rules)
        if wanted.room and (placed.room_name or "").casefold() != wanted.room.casefold():
            continue
        if wanted.tag and wanted.tag.casefold() not in {t.casefold() for t in placed.tag_names}:
            continue
        model = " ".join(p for p in (device.vendor, device.model) if p)
        items.append(DeviceItem(device.id, device.hostname, site.name, device.device_class, placed.room_name, model,
                                state, device.last_seen, placed.tag_names))
        if len(items) >= limit:
            break
    return items


@dataclass(frozen=True)
class FilterChoices:
    sites: list[str]
    classes: list[str]
    rooms: list[str]
    states: tuple[str, ...] = DEVICE_STATES
    tags: list[str] = field(default_factory=list)


def filter_choices(session: Session, principal: Principal, rules: Sequence[PlacementRule] = ()) -> FilterChoices:
    sites = visible_sites(session, principal)
    ids = [s.id for s in sites]
    classes = session.exec(select(Device.device_class).where(col(Device.site_id).in_(ids)).distinct()).all()
    placed = [p.labels for p in placed_devices(session, rules) if p.device.site_id in ids]
    rooms = {p.room_name for p in placed if p.room_name}
    tags = {t for p in placed for t in p.tag_names}
    return FilterChoices([s.name for s in sites], sorted(classes), sorted(rooms), tags=sorted(tags))


def daily_energy(session: Session, device_id: int, zone: ZoneInfo, now: datetime, days: int = 14) -> list[Bar]:
    """The device's kWh per local day over the last ``days`` days, oldest first: the energy package's one
    total by day, so the chart and `caretaker energy summary --by day` agree. A day it never reported on
    (only attributed silence, or nothing) is marked as having no data; the month is named under the first
    day and where a new month starts."""
    today = now.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    site_id = session.exec(select(Device.site_id).where(Device.id == device_id)).one()
    found = energy_totals(session, datetime.combine(first, time(), zone), now, ("day", "method"),
                          site_ids=[site_id], device_ids=[device_id], now=now).groups
    totals: dict[date, float] = {}
    reported: set[date] = set()
    for (day, method), total in found.items():
        when = date.fromisoformat(day)
        totals[when] = totals.get(when, 0.0) + float(total.wh) / 1000
        if method != ATTRIBUTED and total.wh > 0:
            reported.add(when)
    bars = []
    for day in (first + timedelta(days=i) for i in range(days)):
        short = f"{day.day}\n{day:%b}" if day == first or day.day == 1 else str(day.day)
        bars.append(Bar(f"{day:%a %d %b}", short, round(totals.get(day, 0.0), 4), day in reported))
    return bars


def device_changes(session: Session, device_id: int, limit: int = 50) -> list[ChangeRecord]:
    return list(session.exec(select(ChangeRecord).where(ChangeRecord.object_type == "device",
                                                        ChangeRecord.object_id == str(device_id))
                             .order_by(col(ChangeRecord.at).desc()).limit(limit)).all())


def device_actions(session: Session, device_id: int, limit: int = 50) -> list[ActionRecord]:
    return list(session.exec(select(ActionRecord).where(ActionRecord.device_id == device_id)
                             .order_by(col(ActionRecord.at).desc()).limit(limit)).all())
