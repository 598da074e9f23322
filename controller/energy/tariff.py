"""Site tariffs: pence per kWh by time-of-use band in the site's local time.

There is no national school tariff (DOMAIN.md), so each site has its own, from a date. Bands are read
in local wall-clock time because that is how suppliers write them ("night 00:30-07:30"), and that is
what keeps a night band a night band across the October and March clock changes. The standing charge
is stored for the bill but is a fixed cost, so it never enters a saving.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from controller.energy.models import Tariff
from controller.errors import DomainError
from controller.timeutil import as_utc

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_SETS = {"all": frozenset(range(7)), "weekdays": frozenset(range(5)), "weekends": frozenset({5, 6})}
_MINUTES_PER_DAY = 24 * 60


class TariffError(ValueError, DomainError):
    """A tariff that cannot price every minute of the week, or a band that cannot be read."""


@dataclass(frozen=True)
class Band:
    name: str
    days: frozenset[int]  # 0 = Monday, as date.weekday()
    start: int  # minutes after local midnight
    end: int  # exclusive; end <= start wraps past midnight (on the same listed day's clock)
    pence_per_kwh: Decimal

    def covers(self, weekday: int, minute: int) -> bool:
        if weekday not in self.days:
            return False
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end


@dataclass(frozen=True)
class TariffSpec:
    name: str
    valid_from: datetime
    bands: tuple[Band, ...]
    standing_pence_per_day: Decimal = Decimal(0)

    def band_at(self, local: datetime) -> Band:
        minute = local.hour * 60 + local.minute
        for band in self.bands:
            if band.covers(local.weekday(), minute):
                return band
        raise TariffError(f"tariff {self.name} has no band for {local:%a %H:%M}")  # parse_bands prevents this


def _minute(text: object, where: str) -> int:
    try:
        parsed = time.fromisoformat(str(text))
    except ValueError:
        raise TariffError(f"{where}: {text!r} is not a time like 07:30") from None
    return parsed.hour * 60 + parsed.minute


def _days(value: object, where: str) -> frozenset[int]:
    if isinstance(value, str) and value in DAY_SETS:
        return DAY_SETS[value]
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not names:
        raise TariffError(f"{where}: days must be all, weekdays, weekends or a list like [sat, sun]")
    days = set()
    for name in names:
        key = str(name).strip().lower()[:3]
        if key not in DAY_NAMES:
            raise TariffError(f"{where}: {name!r} is not a day (mon..sun)")
        days.add(DAY_NAMES.index(key))
    return frozenset(days)


def parse_bands(raw: Sequence[Mapping[str, object]]) -> tuple[Band, ...]:
    """Validated bands; every minute of every day must fall in one, so no kWh is ever left unpriced."""
    if not raw:
        raise TariffError("a tariff needs at least one band")
    bands = []
    for i, entry in enumerate(raw):
        where = f"band {i + 1} ({entry.get('name', 'unnamed')})"
        try:
            rate = Decimal(str(entry["pence_per_kwh"]))
        except (KeyError, InvalidOperation):
            raise TariffError(f"{where}: pence_per_kwh must be a number") from None
        if not rate.is_finite() or rate < 0 or rate > 1000:
            raise TariffError(f"{where}: pence_per_kwh must be between 0 and 1000, not {rate}")
        start, end = _minute(entry.get("start", "00:00"), where), _minute(entry.get("end", "00:00"), where)
        bands.append(Band(str(entry.get("name") or f"band {i + 1}"), _days(entry.get("days", "all"), where),
                          start, end, rate))
    # Coverage only changes where a band starts or ends, so checking those minutes checks them all.
    edges = sorted({0, *(b.start for b in bands), *(b.end % _MINUTES_PER_DAY for b in bands)})
    for weekday in range(7):
        for minute in edges:
            if not any(b.covers(weekday, minute) for b in bands):
                raise TariffError(f"no band prices {DAY_NAMES[weekday]} {minute // 60:02d}:{minute % 60:02d}")
    return tuple(bands)


def mean_rate(spec: TariffSpec, start: datetime, zone: ZoneInfo, seconds: int = 3600) -> Decimal:
    """The time-weighted p/kWh over [start, start + seconds): energy within an hour is spread evenly
    (as hourly.py spreads it), so a band boundary at half past prices half the hour each way."""
    start = as_utc(start)
    cuts = [0, seconds]
    local = start.astimezone(zone)
    base = local.hour * 60 + local.minute
    for band in spec.bands:
        for edge in (band.start, band.end):
            offset = ((edge - base) % _MINUTES_PER_DAY) * 60 - local.second
            if 0 < offset < seconds:
                cuts.append(offset)
    cuts = sorted(set(cuts))
    total = Decimal(0)
    for a, b in pairwise(cuts):
        band = spec.band_at((start + timedelta(seconds=a)).astimezone(zone))
        total += band.pence_per_kwh * (b - a)
    return total / seconds


def spec_of(row: Tariff) -> TariffSpec:
    return TariffSpec(row.name, row.valid_from, parse_bands(row.bands), Decimal(str(row.standing_pence_per_day)))


def set_tariff(session: Session, site_id: int, name: str, valid_from: datetime,
               bands: Sequence[Mapping[str, object]], standing_pence_per_day: float = 0.0) -> Tariff:
    """Store a site's tariff from ``valid_from`` (replacing one from the same moment). The caller commits."""
    parse_bands(bands)
    if standing_pence_per_day < 0:
        raise TariffError("the standing charge cannot be negative")
    valid_from = as_utc(valid_from)
    row = session.exec(select(Tariff).where(Tariff.site_id == site_id, Tariff.valid_from == valid_from)).first()
    row = row or Tariff(site_id=site_id, name=name, valid_from=valid_from, bands=[])
    row.name, row.bands, row.standing_pence_per_day = name, [dict(b) for b in bands], standing_pence_per_day
    session.add(row)
    return row


def tariffs_for(session: Session, site_ids: Iterable[int]) -> dict[int, list[TariffSpec]]:
    """Each site's tariffs, oldest first."""
    found: dict[int, list[TariffSpec]] = {}
    rows = session.exec(select(Tariff).where(col(Tariff.site_id).in_(list(site_ids))).order_by(col(Tariff.valid_from)))
    for row in rows:
        found.setdefault(row.site_id, []).append(spec_of(row))
    return found


def tariff_at(specs: Sequence[TariffSpec], when: datetime) -> TariffSpec | None:
    """The tariff in force at ``when``; None before the first one (that energy is reported unpriced)."""
    current = None
    for spec in specs:
        if as_utc(spec.valid_from) <= as_utc(when):
            current = spec
    return current


def standing_charge_pence(specs: Sequence[TariffSpec], days: Iterable[date], zone: ZoneInfo) -> Decimal:
    """The standing charge over whole local days (for a bill; never part of a saving)."""
    total = Decimal(0)
    for day in days:
        spec = tariff_at(specs, datetime.combine(day, time(12), zone))
        if spec is not None:
            total += spec.standing_pence_per_day
    return total
