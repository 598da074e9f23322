"""Rolled-up days give the figures of the hours they were rolled from, to the Wh, the penny and the gram.

The hourly path is the reference: ``sum_hours`` over ``iter_device_hours``, every hour read. Each test
builds a seeded estate holding every case (a meter beside an agent, RAPL, battery, split hours,
monitors, runs of silence, a device first heard mid-period, history before the period), rolls it with
the real job and asks the same questions through ``energy_totals``. Tariffs are time-of-use (a weekday
day band and a night band) and flat; one estate spans the March clock change, one a site whose local
New Year falls inside a UTC day.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import delete
from sqlmodel import Session, func, select

from controller.energy.accounting import Pricer, energy_summary, energy_totals, price, restate, sum_hours
from controller.energy.inputs import load_estate
from controller.energy.lines import iter_device_hours
from controller.energy.models import EnergyDay, EnergyMonth, RollupMark
from controller.energy.rolled import rolled_through
from controller.energy.rolling import roll
from controller.energy.rollup import reopen
from controller.energy.tariff import set_tariff
from controller.register.models import Device, EnergyBucket, Site
from tests.controller.energy.estate import HOUR, bucket, device, site

FLAT = [{"name": "flat", "days": "all", "start": "00:00", "end": "00:00", "pence_per_kwh": "24.5"}]
DAY = timedelta(days=1)
WINTER = datetime(2025, 11, 3, tzinfo=UTC)  # GMT throughout
CLOCKS = datetime(2026, 3, 25, tzinfo=UTC)  # the clocks go forward on Sunday 29 March
NEW_YEAR = datetime(2025, 12, 29, tzinfo=UTC)  # Tokyo's 1 January starts at 15:00 UTC on 31 December
GROUPINGS = ("site", "device,method,state", "trust,device_class", "room,method", "estate")


@pytest.fixture
def session(engine):
    with Session(engine) as session:
        yield session


def estate(session: Session, base: datetime, seed: int = 7, days: int = 9) -> None:
    rng = random.Random(seed)
    sites = [site(session, "Oakfield Primary"), site(session, "Vale Secondary", trust="Vale Trust", tariff=FLAT),
             site(session, "Tokyo Annex", trust="Vale Trust", timezone="Asia/Tokyo")]
    for n in range(10):
        at = sites[n % 3]
        pc = device(session, at, f"PC{n:02d}", ("desktop", "laptop", "desktop", "server")[n % 4], f"Room {n % 3}")
        if n == 9:
            continue  # never heard of
        hour = 40 if n == 7 else -30  # one first heard mid-period, the others before it
        while hour < days * 24:
            if rng.random() < 0.3:
                hour += rng.choice((1, 3, 9, 20, 40))  # a run of silence, some across midnight
                continue
            when = base + hour * HOUR
            state = rng.choice(("active", "idle", "idle", "sleep", "off"))
            method = ("model", "rapl", "battery")[n % 3] if rng.random() < 0.5 else "model"
            if rng.random() < 0.2:
                part = rng.choice((1799.7, 1200.0, 3599.5, 3000.0))
                bucket(session, pc, when, rng.choice(("active", "idle")), method, rng.choice((6.5, 50.0, 12.25)), part)
                bucket(session, pc, when, rng.choice(("sleep", "off")), "model", rng.choice((1.0, 1.5)), 3600 - part)
            else:
                bucket(session, pc, when, state, method, rng.choice((6.5, 50.0, 12.25, 33.3)))
            if n % 4 == 0 and rng.random() < 0.5:
                bucket(session, pc, when, state, "metered", rng.choice((55.0, 61.7)))
            hour += 1
    session.commit()


def hourly(session: Session, start: datetime, end: datetime, now: datetime, by: str, factor_year=None) -> dict:
    """The reference: every hour read, as before there was a rollup."""
    found = load_estate(session)
    amounts = sum_hours(iter_device_hours(session, found, start, end, now), found, by)
    return price(amounts, start, end, by, Pricer(found, factor_year)).to_json()


def rolled(session: Session, start: datetime, end: datetime, now: datetime, by: str) -> dict:
    return energy_summary(session, start, end, group_by=by, now=now).to_json()


def periods(base: datetime) -> list[tuple[datetime, datetime, datetime]]:
    """(start, end, now): whole UTC days, local days (edges in hours), a period running up to now."""
    return [(base, base + 7 * DAY, base + 9 * DAY),
            (base - timedelta(hours=1), base + 6 * DAY + timedelta(hours=23), base + 9 * DAY),
            (base + timedelta(hours=5, minutes=20), base + 20 * DAY, base + 6 * DAY + timedelta(hours=7, minutes=25)),
            (base - 3 * DAY, base + 2 * DAY + timedelta(hours=2), base + 9 * DAY)]


@pytest.mark.parametrize("base", [WINTER, CLOCKS, NEW_YEAR], ids=["winter", "clock-change", "new-year"])
def test_rolled_days_give_the_figures_of_their_hours(session, base):
    estate(session, base)
    expected = {(p, by): hourly(session, *p, by) for p in periods(base) for by in GROUPINGS}
    result = roll(session, base + 8 * DAY + timedelta(hours=3))
    session.commit()
    assert rolled_through(session) == (base + 8 * DAY).date()
    days = session.exec(select(func.count()).select_from(EnergyDay)).one()
    assert result.rows == days + session.exec(select(func.count()).select_from(EnergyMonth)).one() and days > 200
    for (p, by), figures in expected.items():
        assert rolled(session, *p, by) == figures, (p, by)


def test_rolled_months_give_the_figures_of_their_hours(session):
    """Six weeks from 20 October: the October clock change, then the whole of November as a month."""
    base = datetime(2025, 10, 20, tzinfo=UTC)
    estate(session, base, days=46)
    november, december = datetime(2025, 11, 1, tzinfo=UTC), datetime(2025, 12, 1, tzinfo=UTC)
    asked = [(november, december, december + DAY), (base + 3 * HOUR, december + 2 * HOUR, base + 45 * DAY),
             (november - timedelta(hours=1), december - timedelta(hours=1), base + 45 * DAY)]
    expected = {(p, by): hourly(session, *p, by) for p in asked for by in GROUPINGS}
    roll(session, base + 45 * DAY)
    session.commit()
    months = set(session.exec(select(EnergyMonth.month)))
    assert months == {date(2025, 10, 1), november.date()}  # October: no device was heard before the 18th
    for (p, by), figures in expected.items():
        assert rolled(session, *p, by) == figures, (p, by)


def test_a_day_priced_by_band_keeps_each_band_apart(session):
    """The day/night tariff makes two rows of a weekday (07:00-19:00 and the rest) and one of a Sunday."""
    estate(session, WINTER)
    roll(session, WINTER + 8 * DAY)
    session.commit()
    day_band = sum(1 << h for h in range(7, 19))
    weekday = set(session.exec(select(EnergyDay.hours).where(EnergyDay.device_id == 1,
                                                                        EnergyDay.day == WINTER.date())))
    sunday = set(session.exec(select(EnergyDay.hours).where(EnergyDay.device_id == 1,
                                                                       EnergyDay.day == (WINTER + 6 * DAY).date())))
    assert weekday == {day_band, (1 << 24) - 1 - day_band}
    assert sunday == {(1 << 24) - 1}


def test_restating_from_rolled_days_matches_the_hours(session):
    estate(session, WINTER)
    start, end, now = WINTER, WINTER + 7 * DAY, WINTER + 9 * DAY
    expected = hourly(session, start, end, now, "site", factor_year=2023)
    roll(session, now)
    session.commit()
    _, restated = restate(session, start, end, 2023, now=now)
    assert restated.to_json() == expected


def test_a_late_report_in_a_rolled_day_is_counted_and_rolled_again(session):
    estate(session, WINTER)
    now = WINTER + 8 * DAY + timedelta(hours=3)
    roll(session, now)
    session.commit()
    start, end = WINTER - DAY, WINTER + 8 * DAY
    late = WINTER + 2 * DAY + 14 * HOUR  # a meter's reading for a rolled Wednesday afternoon, and an agent's
    bucket(session, _device(session, 2), late, "active", "metered", 80.0)
    bucket(session, _device(session, 5), late + 3 * HOUR, "idle", "rapl", 9.5, 1500)
    reopen(session, {2: late, 5: late + 3 * HOUR}, now)
    session.commit()
    assert {m.device_id for m in session.exec(select(RollupMark))} == {2, 5}
    for by in GROUPINGS:
        assert rolled(session, start, end, now, by) == hourly(session, start, end, now, by), by
    again = roll(session, now + HOUR)
    session.commit()
    assert again.remarked == 2 and session.exec(select(RollupMark)).all() == []
    for by in GROUPINGS:
        assert rolled(session, start, end, now, by) == hourly(session, start, end, now, by), by


def _device(session: Session, device_id: int) -> Device:
    return session.get_one(Device, device_id)


def test_a_mark_that_moved_while_the_job_worked_stays(session):
    estate(session, WINTER)
    now = WINTER + 8 * DAY
    roll(session, now)
    session.commit()
    reopen(session, {3: WINTER + 2 * DAY}, now)
    session.commit()
    reopen(session, {3: WINTER + DAY}, now)  # a second late report, the earlier day wins
    session.commit()
    assert session.get(RollupMark, 3).from_day == (WINTER + DAY).date()
    assert session.get(RollupMark, 3).version == 2


def test_a_report_of_today_marks_nothing(session):
    estate(session, WINTER)
    now = WINTER + 8 * DAY + timedelta(hours=5)
    reopen(session, {1: WINTER + 8 * DAY + HOUR}, now)
    session.commit()
    assert session.exec(select(RollupMark)).all() == []


def test_rolled_days_answer_after_their_hours_are_gone(session):
    """Past hourly retention only the rollup holds a day: a period of whole rolled days still adds up."""
    estate(session, WINTER)
    now = WINTER + 9 * DAY
    start, end = WINTER + DAY, WINTER + 5 * DAY
    expected = {by: hourly(session, start, end, now, by) for by in GROUPINGS}
    roll(session, now)
    session.commit()
    session.execute(delete(EnergyBucket).where(EnergyBucket.hour >= start + 2 * HOUR, EnergyBucket.hour < end - HOUR))
    session.commit()
    for by in GROUPINGS:
        figures = energy_totals(session, start, end, by, now=now).summary().to_json()
        assert figures["rows"] == expected[by]["rows"], by


def test_band_times_edited_after_the_roll_are_priced_exactly(session):
    """The rollup grouped hours by the bands of roll time; new band times make those days read from hours."""
    base = datetime(2025, 10, 20, tzinfo=UTC)
    estate(session, base, days=46)
    roll(session, base + 45 * DAY)
    session.commit()
    oak = session.exec(select(Site).where(Site.name == "Oakfield Primary")).one()
    set_tariff(session, oak.id, "standard", datetime(2020, 1, 1, tzinfo=UTC), [
        {"name": "peak", "days": "weekdays", "start": "08:30", "end": "17:30", "pence_per_kwh": "41"},
        {"name": "off-peak", "days": "all", "start": "00:00", "end": "00:00", "pence_per_kwh": "12.5"}])
    session.commit()
    start, end, now = datetime(2025, 10, 25, tzinfo=UTC), datetime(2025, 12, 3, tzinfo=UTC), base + 45 * DAY
    for by in GROUPINGS:
        assert rolled(session, start, end, now, by) == hourly(session, start, end, now, by), by
