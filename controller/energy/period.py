"""Turning what a person types ("--site Oakfield --from 2025-09-01 --to 2025-12-19") into sites and instants.

Shared by the CLI and the web API so both read dates the same way: a date is a whole local day at the
site (the first named, else Europe/London), and ``to`` is inclusive, as people say "to 19 December".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from controller.errors import DomainError
from controller.register.models import Site

DEFAULT_ZONE = ZoneInfo("Europe/London")


class PeriodError(ValueError, DomainError):
    """A site that is not in the register, or dates that cannot be read or run backwards."""


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    site_ids: list[int] | None  # None: every site


def _instant(text: str, zone: ZoneInfo, end: bool) -> datetime:
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=1) if end else day, time(0), zone)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{text!r} is not a date (2025-11-10) or a time (2025-11-10T18:00+00:00)") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def resolve(session: Session, sites: Sequence[str], start: str, end: str) -> Period:
    site_ids = None
    zone = DEFAULT_ZONE
    if sites:
        rows = {s.name: s for s in session.exec(select(Site).where(col(Site.name).in_(list(sites))))}
        missing = [name for name in sites if name not in rows]
        if missing:
            raise PeriodError(f"no site called {missing[0]!r}")
        site_ids = [rows[name].id for name in sites]
        zone = ZoneInfo(rows[sites[0]].timezone)
    period = Period(_instant(start, zone, end=False), _instant(end, zone, end=True), site_ids)
    if period.end <= period.start:
        raise PeriodError(f"the period ends ({end}) before it starts ({start})")
    return period
