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


def test_a_week_in_observe_mode_says_what_it_would_have_saved_and_on_how_many_school_days(engine):
    """Wednesday 18 November 2026 at noon (GMT). A desktop idle since Monday 00:00, its policy observing:
    it recorded a shutdown it would have made at 18:00 on Monday and on Tuesday, each until 08:00 the next
    morning (14 h). Had it acted, it would have drawn off (1 W + its screen 0.3 W) rather than awake (50 W
    idle + its screen on, 25 W): (75 - 1.3) W × 28 h = 2.064 kWh. There is no tariff. It reported on all
    three of the week's school days so far (Monday to Wednesday)."""
    from controller.register.models import ActionRecord
    from controller.web.accounts import Principal, Role
    from controller.web.views import overview

    now = datetime(2026, 11, 18, 12, tzinfo=UTC)
    monday = datetime(2026, 11, 16, tzinfo=UTC)
    with Session(engine) as session:
        site = Site(name="Hillside Primary")
        session.add(site)
        session.flush()
        device = Device(site_id=site.id, hostname="HILL-R12-PC01", device_class="desktop")
        session.add(device)
        session.flush()
        for h in range(60):
            session.add(EnergyBucket(device_id=device.id, hour=monday + timedelta(hours=h), state="idle",
                                     method="model", joules=50 * 3600, seconds=3600))
        for day in (0, 1):
            at = monday + timedelta(days=day, hours=18)
            session.add(ActionRecord(at=at, site_id=site.id, device_id=device.id, kind="shutdown", outcome="observed",
                                     mode="observe", reason="would shutdown", actor="agent:x",
                                     details={"until": (at + timedelta(hours=14)).isoformat()}))
        session.commit()
        view = overview(session, Principal("user:barry", Role.bursar, None), now, 300)
    (line,) = view.sites
    assert view.observing and line.saved_kwh == 0
    assert round(line.would_kwh, 3) == 2.064 and line.would_gbp is None
    assert line.savings_reason == "no savings yet: observe mode; it would have saved 2.1 kWh (unpriced: no tariff set)"
    assert (line.coverage.school_days, line.coverage.observed_school_days) == (3, 3)
