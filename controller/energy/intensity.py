"""Half-hourly grid carbon intensity (National Grid ESO Carbon Intensity API), cached, and never required.

Used to place maintenance in the cleanest hours ("the lowest-carbon 90 minutes between 00:00 and
06:00"). Regional figures come by postcode outcode and are forecasts only; Northern Ireland is not
covered. The API is an outside service a school's network may block, so every call has a short
timeout, every answer is cached (table ``carbonintensityperiod``), and when it cannot be reached the
callers get what the cache holds, or nothing, and fall back to the fixed time and the annual factor.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

import httpx
from sqlmodel import Session, col, select

from controller.energy.models import CarbonIntensityPeriod
from controller.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)

API_URL = "https://api.carbonintensity.org.uk"
TIMEOUT_SECONDS = 5.0
HALF_HOUR = timedelta(minutes=30)
NATIONAL = "national"
# A UK outcode: area letters, district digits (and an optional letter), e.g. "RG10", "EC1A", "M1".
_OUTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)(?:\s*[0-9][A-Z]{2})?$")

Getter = Callable[[str], dict]


class IntensityUnavailable(RuntimeError):
    """The API could not be reached or answered with something that is not a forecast."""


@dataclass(frozen=True)
class IntensityPeriod:
    start: datetime
    end: datetime
    forecast: int  # gCO2/kWh
    actual: int | None = None


@dataclass(frozen=True)
class Forecast:
    region: str
    periods: tuple[IntensityPeriod, ...]
    source: str  # "api", "cache" or "unavailable"
    problem: str | None = None


def outcode(postcode: str | None) -> str | None:
    """"RG10 6AB" → "RG10"; None for anything that is not a UK postcode (or a Northern Irish one: BT)."""
    if not postcode:
        return None
    text = postcode.strip().upper()
    match = _OUTCODE.match(text) or _OUTCODE.match(f"{text[:-3]} {text[-3:]}" if len(text) > 4 else "")
    if match is None or match.group(1).startswith("BT"):
        return None
    return match.group(1)


def _when(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return as_utc(value)


def parse_periods(payload: dict) -> list[IntensityPeriod]:
    """Periods from a national (``data: [..]``) or regional (``data: {..., data: [..]}`` or
    ``data: [{..., data: [..]}]``) answer."""
    data = payload.get("data")
    if isinstance(data, list) and data and isinstance(data[0], dict) and "data" in data[0]:
        data = data[0]
    if isinstance(data, dict):
        data = data.get("data")
    if not isinstance(data, list):
        raise IntensityUnavailable("the answer holds no list of periods")
    periods = []
    for entry in data:
        try:
            intensity = entry["intensity"]
            forecast = intensity["forecast"]
            periods.append(IntensityPeriod(_when(entry["from"]), _when(entry["to"]), int(forecast),
                                           None if intensity.get("actual") is None else int(intensity["actual"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise IntensityUnavailable(f"a period cannot be read: {exc!r}") from None
    return periods


def forecast_url(region: str, start: datetime, base: str = API_URL) -> str:
    """The 48-hour forecast from ``start`` (UTC, whole minutes) for a region or the whole of Great Britain."""
    stamp = as_utc(start).strftime("%Y-%m-%dT%H:%MZ")
    if region == NATIONAL:
        return f"{base}/intensity/{stamp}/fw48h"
    return f"{base}/regional/intensity/{stamp}/fw48h/postcode/{region}"


def http_getter(timeout: float = TIMEOUT_SECONDS) -> Getter:
    def get(url: str) -> dict:
        try:
            response = httpx.get(url, timeout=timeout, headers={"Accept": "application/json"})
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise IntensityUnavailable(f"{type(exc).__name__}: {exc}") from None
    return get


def cached(session: Session, region: str, start: datetime, end: datetime) -> list[IntensityPeriod]:
    rows = session.exec(select(CarbonIntensityPeriod).where(
        CarbonIntensityPeriod.region == region, col(CarbonIntensityPeriod.start) >= as_utc(start) - HALF_HOUR,
        col(CarbonIntensityPeriod.start) < as_utc(end)).order_by(col(CarbonIntensityPeriod.start)))
    return [IntensityPeriod(as_utc(r.start), as_utc(r.end), r.forecast_g_per_kwh, r.actual_g_per_kwh) for r in rows]


def store(session: Session, region: str, periods: Sequence[IntensityPeriod], now: datetime) -> None:
    """Upsert: a later forecast for the same half-hour replaces the earlier one. The caller commits."""
    for period in periods:
        row = session.get(CarbonIntensityPeriod, (region, period.start)) or CarbonIntensityPeriod(
            region=region, start=period.start, end=period.end, forecast_g_per_kwh=period.forecast)
        row.end, row.forecast_g_per_kwh, row.actual_g_per_kwh = period.end, period.forecast, period.actual
        row.fetched_at = now
        session.add(row)


def cached_for_site(session: Session, postcode: str | None, start: datetime, end: datetime
                    ) -> tuple[IntensityPeriod, ...]:
    """The cached forecast for a site's region (its outcode, else Great Britain): never the network,
    so the schedule planner can ask on the ingest path. ``caretaker energy intensity fetch`` fills it."""
    return tuple(cached(session, outcode(postcode) or NATIONAL, start, end))


def _covers(periods: Sequence[IntensityPeriod], start: datetime, end: datetime) -> bool:
    return bool(periods) and periods[0].start <= start and periods[-1].end >= end and all(
        a.end == b.start for a, b in pairwise(periods))


def forecast(session: Session, region: str, start: datetime, end: datetime, get: Getter | None = None,
             base: str = API_URL, now: datetime | None = None) -> Forecast:
    """Intensity over [start, end): from the cache when it covers the span, else fetched and cached;
    when the API fails, whatever the cache holds, with the problem named (and logged, once per call)."""
    have = cached(session, region, start, end)
    if _covers(have, as_utc(start), as_utc(end)):
        return Forecast(region, tuple(have), "cache")
    try:
        fetched = parse_periods((get or http_getter())(forecast_url(region, start, base)))
    except IntensityUnavailable as exc:
        log.warning("carbon intensity for %s unavailable, using %d cached periods: %s", region, len(have), exc)
        return Forecast(region, tuple(have), "unavailable" if not have else "cache", str(exc))
    store(session, region, fetched, as_utc(now or utcnow()))
    session.flush()
    return Forecast(region, tuple(cached(session, region, start, end)), "api")


def lowest_carbon_window(periods: Sequence[IntensityPeriod], earliest: datetime, latest: datetime,
                         duration: timedelta) -> datetime | None:
    """The start of the ``duration`` inside [earliest, latest] with the lowest mean forecast intensity.

    Candidates start at ``earliest`` and at each period boundary after it; a candidate counts only if
    the forecast covers all of it without a hole. Ties go to the earliest. None when no candidate is
    covered: the caller then keeps its fixed time.
    """
    earliest, latest = as_utc(earliest), as_utc(latest)
    ordered = sorted(periods, key=lambda p: p.start)
    starts = sorted({earliest, *(p.start for p in ordered if earliest < p.start <= latest - duration)})
    best: tuple[float, datetime] | None = None
    for start in starts:
        end = start + duration
        if end > latest:
            continue
        covered, weighted, cursor = timedelta(0), 0.0, start
        for period in ordered:
            if period.end <= cursor or period.start >= end:
                continue
            if period.start > cursor:
                break  # a hole in the forecast
            overlap = min(period.end, end) - cursor
            weighted += period.forecast * overlap.total_seconds()
            covered += overlap
            cursor = min(period.end, end)
            if cursor >= end:
                break
        if covered < duration:
            continue
        mean = weighted / duration.total_seconds()
        if best is None or mean < best[0]:
            best = (mean, start)
    return best[1] if best else None
