"""How much of a period the figures rest on: the days a site's devices reported, against its school days.

A total from six school days of data is not a term's total, and a person reading it must be told so
where the figure is: "devices reporting since 28 Nov 2025: data on 6 of 72 school days". A day counts
as observed when any device of the site reported on it (silence is attributed, not observed); the
school days are the site's own (its calendars, through ``is_school_day``), up to today.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from controller.register.models import Device, EnergyBucket


@dataclass(frozen=True)
class Coverage:
    site: str
    first_report: date | None  # the first local day any device of the site reported, ever
    school_days: int  # in the period, up to today
    observed_school_days: int  # of them, days the site's devices reported

    @property
    def complete(self) -> bool:
        return self.observed_school_days >= self.school_days

    def sentence(self) -> str:
        if self.first_report is None:
            return f"{self.site}: no device has reported yet"
        return (f"{self.site}: devices reporting since {self.first_report:%-d %b %Y}: data on "
                f"{self.observed_school_days} of {self.school_days} school day{'' if self.school_days == 1 else 's'}")


def observed_days(session: Session, site_ids: Sequence[int], start: datetime, end: datetime,
                  zones: dict[int, ZoneInfo]) -> dict[int, set[date]]:
    """Per site, the local days in [start, end) on which its devices reported."""
    rows = session.exec(select(Device.site_id, EnergyBucket.hour).distinct()
                        .join(Device, col(Device.id) == col(EnergyBucket.device_id))
                        .where(col(Device.site_id).in_(list(site_ids)), col(EnergyBucket.hour) >= start,
                               col(EnergyBucket.hour) < end, col(EnergyBucket.seconds) > 0)).all()
    found: dict[int, set[date]] = defaultdict(set)
    for site_id, hour in rows:
        found[site_id].add(_aware(hour).astimezone(zones[site_id]).date())
    return found


def first_reports(session: Session, site_ids: Sequence[int], zones: dict[int, ZoneInfo]) -> dict[int, date]:
    rows = session.exec(select(Device.site_id, func.min(EnergyBucket.hour))
                        .join(Device, col(Device.id) == col(EnergyBucket.device_id))
                        .where(col(Device.site_id).in_(list(site_ids)), col(EnergyBucket.seconds) > 0)
                        .group_by(Device.site_id)).all()
    return {site_id: _aware(hour).astimezone(zones[site_id]).date() for site_id, hour in rows if hour is not None}


def coverage(name: str, first_report: date | None, days: Sequence[date], observed: set[date],
             is_school_day: Callable[[date], bool]) -> Coverage:
    """Pure: the school days among ``days`` and how many of them were observed."""
    school = [day for day in days if is_school_day(day)]
    return Coverage(name, first_report, len(school), sum(1 for day in school if day in observed))


def days_until(first: date, last: date, now: datetime, zone: ZoneInfo) -> list[date]:
    """The local days first..last that have begun by ``now``."""
    last = min(last, now.astimezone(zone).date())
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _aware(stored: object) -> datetime:
    value = datetime.fromisoformat(stored) if isinstance(stored, str) else stored
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
