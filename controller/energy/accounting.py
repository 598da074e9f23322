"""kWh, pounds and kgCO2e by site, room, device or class, with the method and factor behind each figure.

The query API other packages build on (metrics, reports, the CLI and the web API):

- ``energy_summary(session, start, end, site_ids=None, group_by="site")`` → ``EnergySummary``
- ``restate(session, start, end, factor_year, ...)``: the same figures at another year's carbon factor
- ``Pricer``: the p/kWh and kgCO2e/kWh for one site-hour, shared with savings

Arithmetic is Decimal from the stored joules onwards and rounded only in the returned rows (kWh to the
Wh, kgCO2e to the gram, pounds to a hundredth of a penny), so totals add up to the Wh and the gram.
A site-hour before the site's first tariff is counted in ``unpriced_kwh`` rather than priced at zero.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlmodel import Session

from controller.energy.carbon import AppliedFactor
from controller.energy.inputs import Estate, load_estate
from controller.energy.lines import DeviceHours, iter_device_hours
from controller.energy.school_hours import SchoolHours
from controller.energy.tariff import mean_rate, tariff_at
from controller.timeutil import as_utc

GROUPS = ("estate", "trust", "site", "room", "device", "device_class")
METHODS = ("metered", "rapl", "battery", "model", "attributed")
STATES = ("active", "idle", "sleep", "off")
WH = Decimal("0.001")  # kWh to the Wh
GRAM = Decimal("0.001")  # kg to the gram
HUNDREDTH_PENNY = Decimal("0.0001")  # £
SHARE = Decimal("0.0001")
_ZERO = Decimal(0)


def round_half_up(value: Decimal, exponent: Decimal) -> Decimal:
    """Half up, as a person checking the figure by hand would round."""
    return value.quantize(exponent, ROUND_HALF_UP)


class AccountingError(ValueError):
    """A query that cannot be answered as asked (unknown grouping, reversed dates)."""


class Pricer:
    """p/kWh and carbon factors per site-hour, cached: a summary prices many devices in the same hour."""

    def __init__(self, estate: Estate, factor_year: int | None = None) -> None:
        self.estate = estate
        self.factor_year = factor_year
        self._rates: dict[tuple[int, datetime], Decimal | None] = {}
        self._factors: dict[tuple[int, datetime], AppliedFactor] = {}

    def rate(self, site_id: int, hour: datetime) -> Decimal | None:
        key = (site_id, hour)
        if key not in self._rates:
            spec = tariff_at(self.estate.tariffs.get(site_id, []), hour)
            zone = self.estate.sites[site_id].zone
            self._rates[key] = None if spec is None else mean_rate(spec, hour, zone)
        return self._rates[key]

    def factor(self, site_id: int, hour: datetime) -> AppliedFactor:
        """The factor for the local year the hour falls in (or the restating year), named with that year."""
        key = (site_id, hour)
        if key not in self._factors:
            year = as_utc(hour).astimezone(self.estate.sites[site_id].zone).year
            applied = self.estate.factors.for_year(self.factor_year or year)
            self._factors[key] = AppliedFactor(year, applied.factor_year, applied.kg_per_kwh, applied.td_year,
                                               applied.td_kg_per_kwh, applied.source)
        return self._factors[key]


@dataclass
class CarbonPart:
    """The carbon of the kWh consumed in one year, with the factor (and the factor's year) applied."""

    year: int
    factor_year: int
    kg_per_kwh: Decimal
    kwh: Decimal
    kgco2e: Decimal
    td_year: int | None
    td_kg_per_kwh: Decimal | None
    td_kgco2e: Decimal | None
    source: str


@dataclass
class EnergyRow:
    key: str
    kwh: Decimal
    cost_gbp: Decimal
    unpriced_kwh: Decimal
    kgco2e: Decimal
    td_kgco2e: Decimal | None
    kwh_by_method: dict[str, Decimal]
    method_share: dict[str, Decimal]  # of kWh, summing to 1 (or empty when there is no energy)
    kwh_by_state: dict[str, Decimal]
    carbon: list[CarbonPart]
    devices: int
    kwh_per_school_day: Decimal | None = None  # when the summary was asked to normalise


@dataclass
class EnergySummary:
    start: datetime
    end: datetime
    group_by: str
    rows: list[EnergyRow]
    total: EnergyRow
    school_days: int | None = None  # in the period, when asked: what per-school-day figures divide by

    def to_json(self) -> dict[str, object]:
        return jsonable(asdict(self))


def jsonable(value: object) -> object:
    """Decimals as strings (exact, unlike floats), dates and datetimes as ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


@dataclass
class _Sum:
    wh: Decimal = Decimal(0)
    pence: Decimal = Decimal(0)
    unpriced_wh: Decimal = Decimal(0)
    by_method: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    by_state: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    by_year: dict[tuple[int, int], list] = field(default_factory=dict)  # (year, factor_year) → [factor, wh]
    devices: set[int] = field(default_factory=set)

    def add(self, wh: Decimal, method: str, state: str, rate: Decimal | None, factor: AppliedFactor) -> None:
        self.wh += wh
        if rate is None:
            self.unpriced_wh += wh
        else:
            self.pence += wh * rate / 1000
        self.by_method[method] += wh
        self.by_state[state] += wh
        self.by_year.setdefault((factor.year, factor.factor_year), [factor, Decimal(0)])[1] += wh

    def row(self, key: str, school_days: int | None = None) -> EnergyRow:
        parts = []
        for (_, _), (factor, wh) in sorted(self.by_year.items()):
            td = None if factor.td_kg_per_kwh is None else round_half_up(wh * factor.td_kg_per_kwh / 1000, GRAM)
            parts.append(CarbonPart(factor.year, factor.factor_year, factor.kg_per_kwh, round_half_up(wh / 1000, WH),
                                    round_half_up(wh * factor.kg_per_kwh / 1000, GRAM), factor.td_year,
                                    factor.td_kg_per_kwh, td, factor.source))
        grams = sum((wh * f.kg_per_kwh for f, wh in self.by_year.values()), Decimal(0))
        td_known = all(f.td_kg_per_kwh is not None for f, _ in self.by_year.values())
        td_grams = sum((wh * (f.td_kg_per_kwh or 0) for f, wh in self.by_year.values()), Decimal(0))
        shares = {m: round_half_up(wh / self.wh, SHARE) for m, wh in self.by_method.items()} if self.wh else {}
        return EnergyRow(
            key=key, kwh=round_half_up(self.wh / 1000, WH), cost_gbp=round_half_up(self.pence / 100, HUNDREDTH_PENNY),
            unpriced_kwh=round_half_up(self.unpriced_wh / 1000, WH), kgco2e=round_half_up(grams / 1000, GRAM),
            td_kgco2e=round_half_up(td_grams / 1000, GRAM) if td_known and self.by_year else None,
            kwh_by_method={m: round_half_up(self.by_method[m] / 1000, WH) for m in METHODS if m in self.by_method},
            method_share=shares,
            kwh_by_state={s: round_half_up(self.by_state[s] / 1000, WH) for s in STATES if s in self.by_state},
            carbon=parts, devices=len(self.devices),
            kwh_per_school_day=round_half_up(self.wh / 1000 / school_days, WH) if school_days else None)


def grouping(estate: Estate, group_by: str) -> Callable[[int], str]:
    """The key a device's energy is summed under."""
    if group_by not in GROUPS:
        raise AccountingError(f"cannot group by {group_by!r}; choose one of {', '.join(GROUPS)}")
    devices, sites = estate.devices, estate.sites

    def key(device_id: int) -> str:
        device = devices[device_id]
        site = sites[device.site_id]
        return {"estate": lambda: "estate", "trust": lambda: site.trust or "(no trust)", "site": lambda: site.name,
                "room": lambda: f"{site.name} / {device.room or '(no room)'}",
                "device": lambda: f"{site.name} / {device.hostname}",
                "device_class": lambda: device.device_class}[group_by]()

    return key


@dataclass
class Amounts:
    """Lines summed per group, site-hour, method and state (so each site-hour is priced once), and the
    devices each group holds: everything a summary needs from the lines, whichever factor prices them."""

    wh: dict[tuple[str, int, datetime, str, str], Decimal]
    devices: dict[str, set[int]]


def sum_hours(device_hours: Iterable[DeviceHours], estate: Estate, group_by: str = "site") -> Amounts:
    """Hours of the same kind at the same site-hour are counted, then their lines added once times the
    count: the sums of adding every line, without touching each of a trust's hundreds of millions. (A
    product and a repeated sum can part only in a Decimal's 28th digit, far below the Wh and the gram.)"""
    key = grouping(estate, group_by)
    counts: dict[tuple[str, int], Counter[tuple[datetime, int]]] = defaultdict(Counter)
    devices: dict[str, set[int]] = defaultdict(set)
    templates: list = []
    for found in device_hours:
        if found.hours:
            device = found.device
            group, templates = key(device.id), found.templates
            devices[group].add(device.id)
            counts[group, device.site_id].update(found.hours)
    amounts: dict[tuple[str, int, datetime, str, str], Decimal] = {}
    for (group, site_id), kinds in counts.items():
        for (hour, kind), count in kinds.items():
            for state, method, _, wh in templates[kind]:
                k = (group, site_id, hour, method, state)
                amounts[k] = amounts.get(k, _ZERO) + wh * count
    return Amounts(amounts, devices)


def price(amounts: Amounts, start: datetime, end: datetime, group_by: str, pricer: Pricer,
          school_days: int | None = None) -> EnergySummary:
    """Pure: summed lines priced into rows by group and an estate-wide total."""
    groups: dict[str, _Sum] = defaultdict(_Sum)
    total = _Sum()
    for group, members in amounts.devices.items():
        groups[group].devices |= members
        total.devices |= members
    for (group, site_id, hour, method, state), wh in amounts.wh.items():
        rate, factor = pricer.rate(site_id, hour), pricer.factor(site_id, hour)
        groups[group].add(wh, method, state, rate, factor)
        total.add(wh, method, state, rate, factor)
    rows = [groups[k].row(k, school_days) for k in sorted(groups)]
    return EnergySummary(start, end, group_by, rows, total.row("total", school_days), school_days)


def _estate_amounts(session: Session, estate: Estate, start: datetime, end: datetime, group_by: str,
                    now: datetime | None) -> Amounts:
    """The estate's lines summed a device at a time, never all held at once (a trust's year is billions)."""
    return sum_hours(iter_device_hours(session, estate, start, end, now), estate, group_by)


def energy_summary(session: Session, start: datetime, end: datetime, site_ids: Sequence[int] | None = None,
                   group_by: str = "site", now: datetime | None = None,
                   factor_year: int | None = None, hours: SchoolHours | None = None) -> EnergySummary:
    """Energy, cost and carbon over the whole UTC hours covering [start, end), by ``group_by``.

    ``factor_year`` prices all carbon at that year's factor (see ``restate``). With ``hours``, every row
    also gives kWh per school day: the period's local days (in the first site's zone) that are school
    days by those calendars."""
    if as_utc(end) <= as_utc(start):
        raise AccountingError("the end of the period must come after its start")
    estate = load_estate(session, site_ids)
    grouping(estate, group_by)
    amounts = _estate_amounts(session, estate, start, end, group_by, now)
    school_days = None
    if hours is not None:
        zone = next(iter(estate.sites.values())).zone if estate.sites else ZoneInfo("Europe/London")
        first, last = as_utc(start).astimezone(zone).date(), (as_utc(end) - timedelta(microseconds=1)).astimezone(
            zone).date()
        school_days = hours.school_days([first + timedelta(days=i) for i in range((last - first).days + 1)])
    return price(amounts, start, end, group_by, Pricer(estate, factor_year), school_days)


def restate(session: Session, start: datetime, end: datetime, factor_year: int,
            site_ids: Sequence[int] | None = None, group_by: str = "site",
            now: datetime | None = None) -> tuple[EnergySummary, EnergySummary]:
    """(as reported, restated): a prior period's figures at its own years' factors and at ``factor_year``'s,
    so a change of factor is not mistaken for a real saving (DOMAIN.md, restating)."""
    estate = load_estate(session, site_ids)
    amounts = _estate_amounts(session, estate, start, end, group_by, now)
    return (price(amounts, start, end, group_by, Pricer(estate)),
            price(amounts, start, end, group_by, Pricer(estate, factor_year)))
