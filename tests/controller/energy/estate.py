"""A small fixture estate written straight into the tables, so each test states its buckets in watts and seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from controller.energy.tariff import set_tariff
from controller.register.models import ActionRecord, Device, EnergyBucket, Site

# Monday 10 November 2025: GMT, so London local time is UTC; a term-time school day.
MONDAY = datetime(2025, 11, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)

# Weekdays 07:00-19:00 at the 2023-24 relief threshold, otherwise a cheaper night/weekend rate.
DAY_NIGHT = [
    {"name": "day", "days": "weekdays", "start": "07:00", "end": "19:00", "pence_per_kwh": "30.2"},
    {"name": "night", "days": "all", "start": "00:00", "end": "00:00", "pence_per_kwh": "15"},
]


def site(session: Session, name: str = "Oakfield Primary", tariff: list | None = DAY_NIGHT, **kw) -> Site:
    row = Site(name=name, **kw)
    session.add(row)
    session.flush()
    if tariff is not None:
        set_tariff(session, row.id, "standard", datetime(2020, 1, 1, tzinfo=UTC), tariff, standing_pence_per_day=95)
    return row


def device(session: Session, at: Site, hostname: str, device_class: str, room: str | None = None, **kw) -> Device:
    row = Device(site_id=at.id, hostname=hostname, device_class=device_class, room=room, **kw)
    session.add(row)
    session.flush()
    return row


def bucket(session: Session, of: Device, hour: datetime, state: str, method: str, watts: float,
           seconds: float = 3600) -> None:
    session.add(EnergyBucket(device_id=of.id, hour=hour, state=state, method=method, joules=watts * seconds,
                             seconds=seconds))


def action(session: Session, of: Device, at: datetime, kind: str = "shutdown", outcome: str = "done",
           until: datetime | None = None, mode: str = "force") -> None:
    session.add(ActionRecord(at=at, site_id=of.site_id, device_id=of.id, kind=kind, outcome=outcome, mode=mode,
                             reason="out of hours", actor="controller",
                             details={"until": until.isoformat()} if until else {}))
