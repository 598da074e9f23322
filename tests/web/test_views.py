"""The console's figures keep the school's own days and weeks across the clock changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from controller.register.models import Device, EnergyBucket, Site
from controller.web.views import daily_energy, week_start

LONDON = ZoneInfo("Europe/London")


def test_the_week_starts_at_midnight_on_monday_london_time_in_summer_and_winter():
    assert week_start(datetime(2026, 10, 28, 12, tzinfo=UTC), LONDON) == datetime(2026, 10, 26, tzinfo=LONDON)
    # Wednesday 1 April 2026 (BST): Monday 30 March 00:00 BST is 23:00 UTC on the Sunday.
    start = week_start(datetime(2026, 4, 1, 12, tzinfo=UTC), LONDON)
    assert start.astimezone(UTC) == datetime(2026, 3, 29, 23, tzinfo=UTC)


def test_a_local_day_has_25_hours_when_the_clocks_go_back(engine):
    with Session(engine) as session:
        site = Site(name="Hillside Primary")
        session.add(site)
        session.flush()
        device = Device(site_id=site.id, hostname="HILL-R12-PC01")
        session.add(device)
        session.flush()
        # One kWh every hour, UTC, from Saturday 24 to Monday 26 October 2026; clocks go back on the 25th.
        hour = datetime(2026, 10, 23, 23, tzinfo=UTC)  # Saturday 00:00 BST
        while hour < datetime(2026, 10, 26, 12, tzinfo=UTC):
            session.add(EnergyBucket(device_id=device.id, hour=hour, state="active", method="model",
                                     joules=3.6e6, seconds=3600))
            hour += timedelta(hours=1)
        session.commit()
        days = daily_energy(session, device.id, LONDON, datetime(2026, 10, 26, 12, tzinfo=UTC), days=3)
    assert [(d.label, d.value) for d in days] == [("Sat 24 Oct", 24.0), ("Sun 25 Oct", 25.0), ("Mon 26 Oct", 12.0)]
