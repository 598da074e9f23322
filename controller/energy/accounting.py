"""kWh, pounds and kgCO2e by site, room, device or class, with the method and factor behind each figure.

**The one place an energy total is worked out.** /metrics (through controller.estate), the console,
the reports, the web API and the CLI all ask ``energy_totals`` (exact) or ``energy_summary`` (its rows
rounded for reading), so one device-hour is counted once everywhere: the lines come from
controller.energy.lines, where a metered reading wins the device-hour over the agent's rows.

- ``energy_totals(session, start, end, by=("site",), ...)`` → ``Totals``: exact Decimal sums keyed by any
  mix of estate, trust, site, room, device, device_class (per device), day, hour, method, state (per
  line) and policy (per part of a device-hour, given a ``Classifier``);
- ``energy_summary(session, start, end, site_ids=None, group_by="site")`` → ``EnergySummary``: the same,
  rounded into rows;
- ``restate(session, start, end, factor_year, ...)``: the same figures at another year's carbon factor;
- ``Pricer``: the p/kWh and kgCO2e/kWh for one site-hour, shared with savings.

Arithmetic is Decimal from the stored joules onwards and rounded only in the returned rows (kWh to the
Wh, kgCO2e to the gram, pounds to a hundredth of a penny), so totals add up to the Wh and the gram.
A site-hour before the site's first tariff is counted in ``unpriced_kwh`` rather than priced at zero.

Where the rollup comes in: ``sum_hours`` turns per-device hours into ``Amounts`` (Wh and seconds by
device group, site, hour, method, state and policy label) and everything after it is pure. Whole UTC
days the daily rollup reaches come to it as one line set per device and kind of hour, priced at one of
those hours (controller.energy.rollup says why that is exact); the edges of the period, days not yet
rolled and hour-of-day questions come from ``iter_device_hours``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlmodel import Session

from controller.energy import rollup
from controller.energy.carbon import AppliedFactor
from controller.energy.inputs import DeviceInfo, Estate, load_estate
from controller.energy.lines import DeviceHours, iter_device_hours
from controller.energy.school_hours import SchoolHours
from controller.energy.tariff import mean_rate, tariff_at
from controller.errors import DomainError
from controller.timeutil import as_utc

# What a device is grouped under (one value per device) and what one of its lines is grouped under.
DEVICE_GROUPS = ("estate", "trust", "site", "room", "device", "device_class", "device_id")
LINE_GROUPS = ("day", "hour", "method", "state")
# ``policy``: the label a ``Classifier`` gives each part of a device-hour (school hours, kept on by policy...).
GROUPS = (*DEVICE_GROUPS, *LINE_GROUPS, "policy")
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


class AccountingError(ValueError, DomainError):
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
    cost_gbp: Decimal | None  # None: no tariff covers any of it (not £0); else the priced hours' cost
    unpriced_kwh: Decimal
    kgco2e: Decimal
    td_kgco2e: Decimal | None
    kwh_by_method: dict[str, Decimal]
    method_share: dict[str, Decimal]  # of kWh, summing to 1 (or empty when there is no energy)
    kwh_by_state: dict[str, Decimal]
    carbon: list[CarbonPart]
    devices: int
    kwh_per_school_day: Decimal | None = None  # when the summary was asked to normalise
    labels: tuple[str, ...] = ()  # the key's parts, one per grouping asked for


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
class Total:
    """Exact sums for one group: Wh, pence (priced hours), Wh no tariff covers, and the Wh of each carbon
    factor year, from which the grams follow. Nothing is rounded here; ``row`` rounds for reading."""

    wh: Decimal = _ZERO
    pence: Decimal = _ZERO
    unpriced_wh: Decimal = _ZERO
    by_method: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    by_state: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    seconds_by_state: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    by_year: dict[tuple[int, int], list] = field(default_factory=dict)  # (year, factor_year) → [factor, wh]
    devices: set[int] = field(default_factory=set)

    def add(self, wh: Decimal, seconds: Decimal, method: str, state: str, rate: Decimal | None,
            factor: AppliedFactor) -> None:
        self.wh += wh
        if rate is None:
            self.unpriced_wh += wh
        else:
            self.pence += wh * rate / 1000
        self.by_method[method] += wh
        self.by_state[state] += wh
        self.seconds_by_state[state] += seconds
        self.by_year.setdefault((factor.year, factor.factor_year), [factor, _ZERO])[1] += wh

    def merge(self, other: Total) -> None:
        """Add ``other`` in: exact, so a sum of groups is the group of their union to the last digit."""
        self.wh += other.wh
        self.pence += other.pence
        self.unpriced_wh += other.unpriced_wh
        for mine, theirs in ((self.by_method, other.by_method), (self.by_state, other.by_state),
                             (self.seconds_by_state, other.seconds_by_state)):
            for k, v in theirs.items():
                mine[k] += v
        for k, (factor, wh) in other.by_year.items():
            self.by_year.setdefault(k, [factor, _ZERO])[1] += wh
        self.devices |= other.devices

    @property
    def grams(self) -> Decimal:
        return sum((wh * f.kg_per_kwh for f, wh in self.by_year.values()), _ZERO)

    @property
    def td_grams(self) -> Decimal | None:
        """None when a year holding energy has no T&D factor (nor an earlier one)."""
        if any(f.td_kg_per_kwh is None for f, _ in self.by_year.values()) or not self.by_year:
            return None
        return sum((wh * f.td_kg_per_kwh for f, wh in self.by_year.values()), _ZERO)

    @property
    def priced(self) -> bool:
        """Whether every Wh had a tariff: otherwise ``pence`` is a part, and the figure must say so."""
        return self.unpriced_wh == 0

    def row(self, key: str, school_days: int | None = None, labels: tuple[str, ...] = ()) -> EnergyRow:
        parts = []
        for (_, _), (factor, wh) in sorted(self.by_year.items()):
            td = None if factor.td_kg_per_kwh is None else round_half_up(wh * factor.td_kg_per_kwh / 1000, GRAM)
            parts.append(CarbonPart(factor.year, factor.factor_year, factor.kg_per_kwh, round_half_up(wh / 1000, WH),
                                    round_half_up(wh * factor.kg_per_kwh / 1000, GRAM), factor.td_year,
                                    factor.td_kg_per_kwh, td, factor.source))
        td_grams = self.td_grams
        shares = {m: round_half_up(wh / self.wh, SHARE) for m, wh in self.by_method.items()} if self.wh else {}
        return EnergyRow(
            key=key, kwh=round_half_up(self.wh / 1000, WH),
            cost_gbp=None if self.wh and self.unpriced_wh == self.wh else round_half_up(self.pence / 100,
                                                                                      HUNDREDTH_PENNY),
            unpriced_kwh=round_half_up(self.unpriced_wh / 1000, WH), kgco2e=round_half_up(self.grams / 1000, GRAM),
            td_kgco2e=None if td_grams is None else round_half_up(td_grams / 1000, GRAM),
            kwh_by_method={m: round_half_up(self.by_method[m] / 1000, WH) for m in METHODS if m in self.by_method},
            method_share=shares,
            kwh_by_state={s: round_half_up(self.by_state[s] / 1000, WH) for s in STATES if s in self.by_state},
            carbon=parts, devices=len(self.devices),
            kwh_per_school_day=round_half_up(self.wh / 1000 / school_days, WH) if school_days else None,
            labels=labels or (key,))


def dimensions(group_by: str | Sequence[str]) -> tuple[str, ...]:
    """``"site,method"`` or ``("site", "method")`` as a checked tuple of groupings."""
    dims = tuple(d.strip() for d in group_by.split(",")) if isinstance(group_by, str) else tuple(group_by)
    unknown = [d for d in dims if d not in GROUPS]
    if not dims or unknown:
        raise AccountingError(f"cannot group by {(unknown or [''])[0]!r}; choose from {', '.join(GROUPS)} "
                              "(several joined by commas)")
    return dims


def grouping(estate: Estate, group_by: str | Sequence[str]) -> Callable[[int], tuple[str, ...]]:
    """The per-device part of the key a device's energy is summed under (its line parts come later)."""
    dims = [d for d in dimensions(group_by) if d in DEVICE_GROUPS]
    devices, sites = estate.devices, estate.sites

    def value(dim: str, device_id: int) -> str:
        device = devices[device_id]
        site = sites[device.site_id]
        if dim == "estate":
            return "estate"
        if dim == "trust":
            return site.trust or "(no trust)"
        if dim == "site":
            return site.name
        if dim == "room":
            return f"{site.name} / {device.room or '(no room)'}"
        if dim == "device":
            return f"{site.name} / {device.hostname}"
        if dim == "device_id":
            return str(device.id)
        return device.device_class

    return lambda device_id: tuple(value(dim, device_id) for dim in dims)


# The parts of one device-hour a classifier sees: (label, share of the hour), the shares adding up to 1.
Classifier = Callable[[DeviceInfo, datetime], Sequence[tuple[str, Decimal]]]
_WHOLE = ((("", Decimal(1)),))


@dataclass
class Amounts:
    """Lines summed per device group, site-hour, method, state and policy label (so each site-hour is
    priced once) as [Wh, seconds], and the devices behind each final key: everything a summary needs
    from the lines, whichever factor prices them."""

    wh: dict[tuple[tuple[str, ...], int, datetime, str, str, str], list[Decimal]]
    devices: dict[tuple[str, ...], set[int]]  # by final key (see ``compose``)


def sum_hours(device_hours: Iterable[DeviceHours], estate: Estate, group_by: str | Sequence[str] = "site",
              classifier: Classifier | None = None) -> Amounts:
    """Hours of the same kind at the same site-hour are counted, then their lines added once times the
    count: the sums of adding every line, without touching each of a trust's hundreds of millions. (A
    product and a repeated sum can part only in a Decimal's 28th digit, far below the Wh and the gram.)

    With a ``classifier``, each device-hour is split into its labelled parts first (a 18:00 close splits
    nothing; a 15:30 close splits the hour in half), each part counted at its share of the hour."""
    dims = dimensions(group_by)
    if "policy" in dims and classifier is None:
        raise AccountingError("grouping by policy needs the policies (a classifier)")
    key = grouping(estate, dims)
    compose = _composer(estate, dims)
    counts: dict[tuple[tuple[str, ...], int, str], dict[tuple[datetime, int], Decimal]] = defaultdict(dict)
    devices: dict[tuple[str, ...], set[int]] = defaultdict(set)
    templates: list = []
    by_hour = classifier is not None or "day" in dims or "hour" in dims
    for found in device_hours:
        if not found.hours:
            continue
        device = found.device
        group, templates = key(device.id), found.templates
        if classifier is None:
            kinds = Counter(found.hours)
            mine = counts[group, device.site_id, ""]
            for kind, n in kinds.items():
                mine[kind] = mine.get(kind, _ZERO) + n
            pairs = ((hour, tid, "") for hour, tid in (kinds if by_hour else dict.fromkeys(
                (None, tid) for tid in {tid for _, tid in kinds})))
        else:
            parts = []
            for hour, tid in found.hours:
                for label, share in classifier(device, hour):
                    mine = counts[group, device.site_id, label]
                    mine[hour, tid] = mine.get((hour, tid), _ZERO) + share
                    parts.append((hour, tid, label))
            pairs = iter(parts)
        for hour, tid, label in pairs:
            for state, method, _, _ in templates[tid]:
                devices[compose(group, device.site_id, hour, method, state, label)].add(device.id)
    amounts: dict[tuple[tuple[str, ...], int, datetime, str, str, str], list[Decimal]] = {}
    for (group, site_id, label), kinds in counts.items():
        for (hour, kind), count in kinds.items():
            for state, method, seconds, wh in templates[kind]:
                k = (group, site_id, hour, method, state, label)
                found_sum = amounts.get(k)
                if found_sum is None:
                    amounts[k] = [wh * count, seconds * count]
                else:
                    found_sum[0] += wh * count
                    found_sum[1] += seconds * count
    return Amounts(amounts, devices)


def _composer(estate: Estate, dims: Sequence[str]) -> Callable[..., tuple[str, ...]]:
    """The final key of a line: the device's group values and the line's own, in the order asked for."""
    device_dims = [d for d in dims if d in DEVICE_GROUPS]
    zones = {site_id: site.zone for site_id, site in estate.sites.items()}

    def compose(group: tuple[str, ...], site_id: int, hour: datetime | None, method: str, state: str,
                label: str) -> tuple[str, ...]:
        values = iter(group)
        out = []
        for dim in dims:
            if dim in device_dims:
                out.append(next(values))
            elif dim == "method":
                out.append(method)
            elif dim == "state":
                out.append(state)
            elif dim == "policy":
                out.append(label)
            elif dim == "hour":
                out.append(hour.isoformat() if hour is not None else "")
            else:  # day: the site's local date
                out.append(hour.astimezone(zones[site_id]).date().isoformat() if hour is not None else "")
        return tuple(out)

    return compose


@dataclass
class Totals:
    """Exact totals by key (a tuple of the ``dims`` values) and over everything, before any rounding."""

    start: datetime
    end: datetime
    dims: tuple[str, ...]
    groups: dict[tuple[str, ...], Total]
    total: Total
    school_days: int | None = None

    def summary(self) -> EnergySummary:
        rows = [self.groups[k].row(" / ".join(k), self.school_days, k) for k in sorted(self.groups)]
        return EnergySummary(self.start, self.end, ",".join(self.dims), rows,
                             self.total.row("total", self.school_days), self.school_days)


def add_up(amounts: Amounts, start: datetime, end: datetime, group_by: str | Sequence[str], pricer: Pricer,
           school_days: int | None = None) -> Totals:
    """Pure: summed lines priced into exact totals by group and an estate-wide total."""
    dims = dimensions(group_by)
    compose = _composer(pricer.estate, dims)
    groups: dict[tuple[str, ...], Total] = defaultdict(Total)
    total = Total()
    for final, members in amounts.devices.items():
        groups[final].devices |= members
        total.devices |= members
    for (group, site_id, hour, method, state, label), (wh, seconds) in amounts.wh.items():
        rate, factor = pricer.rate(site_id, hour), pricer.factor(site_id, hour)
        groups[compose(group, site_id, hour, method, state, label)].add(wh, seconds, method, state, rate, factor)
        total.add(wh, seconds, method, state, rate, factor)
    return Totals(start, end, dims, dict(groups), total, school_days)


def price(amounts: Amounts, start: datetime, end: datetime, group_by: str | Sequence[str], pricer: Pricer,
          school_days: int | None = None) -> EnergySummary:
    """Pure: summed lines priced into rows by group and an estate-wide total."""
    return add_up(amounts, start, end, group_by, pricer, school_days).summary()


def _estate_amounts(session: Session, estate: Estate, start: datetime, end: datetime,
                    group_by: str | Sequence[str], now: datetime | None,
                    classifier: Classifier | None = None) -> Amounts:
    """The estate's lines summed a device at a time, never all held at once (a trust's year is billions):
    whole rolled-up days from the daily rollup, unless the question is about hours of the day (by hour,
    by local day or by policy part), which only hours answer (controller.energy.rollup)."""
    dims = dimensions(group_by)
    if classifier is not None or "day" in dims or "hour" in dims:
        return sum_hours(iter_device_hours(session, estate, start, end, now), estate, dims, classifier)
    pricer = Pricer(estate)
    return sum_hours(rollup.iter_hours(session, estate, start, end, now,
                                       lambda site_id, hour: (pricer.rate(site_id, hour),
                                                              pricer.factor(site_id, hour).year)), estate, dims)


def energy_totals(session: Session, start: datetime, end: datetime, by: str | Sequence[str] = ("site",),
                  site_ids: Sequence[int] | None = None, device_ids: Sequence[int] | None = None,
                  now: datetime | None = None, factor_year: int | None = None,
                  classifier: Classifier | None = None, estate: Estate | None = None,
                  hours: SchoolHours | None = None) -> Totals:
    """Energy, cost and carbon over the whole UTC hours covering [start, end), exact, keyed by ``by``.

    The one function every surface's totals come from. ``factor_year`` prices all carbon at that year's
    factor (see ``restate``). ``classifier`` labels the parts of each device-hour for ``by`` "policy".
    With ``hours``, the totals also know the period's school days (in the first site's zone), which
    per-school-day figures divide by."""
    if as_utc(end) <= as_utc(start):
        raise AccountingError("the end of the period must come after its start")
    dims = dimensions(by)
    estate = estate or load_estate(session, site_ids, device_ids)
    amounts = _estate_amounts(session, estate, start, end, dims, now, classifier)
    school_days = None
    if hours is not None:
        zone = next(iter(estate.sites.values())).zone if estate.sites else ZoneInfo("Europe/London")
        first, last = as_utc(start).astimezone(zone).date(), (as_utc(end) - timedelta(microseconds=1)).astimezone(
            zone).date()
        school_days = hours.school_days([first + timedelta(days=i) for i in range((last - first).days + 1)])
    return add_up(amounts, start, end, dims, Pricer(estate, factor_year), school_days)


def energy_summary(session: Session, start: datetime, end: datetime, site_ids: Sequence[int] | None = None,
                   group_by: str | Sequence[str] = "site", now: datetime | None = None,
                   factor_year: int | None = None, hours: SchoolHours | None = None,
                   device_ids: Sequence[int] | None = None) -> EnergySummary:
    """``energy_totals`` rounded into rows for reading: what the CLI and the web API print.

    With ``hours``, every row also gives kWh per school day: the period's local days (in the first
    site's zone) that are school days by those calendars."""
    return energy_totals(session, start, end, group_by, site_ids, device_ids, now, factor_year,
                         hours=hours).summary()


def restate(session: Session, start: datetime, end: datetime, factor_year: int,
            site_ids: Sequence[int] | None = None, group_by: str = "site",
            now: datetime | None = None) -> tuple[EnergySummary, EnergySummary]:
    """(as reported, restated): a prior period's figures at its own years' factors and at ``factor_year``'s,
    so a change of factor is not mistaken for a real saving (DOMAIN.md, restating)."""
    estate = load_estate(session, site_ids)
    amounts = _estate_amounts(session, estate, start, end, group_by, now)
    return (price(amounts, start, end, group_by, Pricer(estate)),
            price(amounts, start, end, group_by, Pricer(estate, factor_year)))
