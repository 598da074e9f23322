"""The fast paths give the figures of the rules applied one hour and one line at a time.

Accounting reads buckets straight from the driver, works out each kind of hour once and counts hours of
a kind instead of adding every line. These tests state the rules the plain way (a walk over every hour
of every device, every line added on its own) over a seeded estate holding every case (meter beside an
agent, RAPL, battery, split hours, monitors, runs of silence, history before the period, a device first
heard mid-period, a partial last hour) and require the same lines and the same summaries.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlmodel import Session, select

from controller.energy.accounting import GROUPS, Amounts, Pricer, energy_summary, grouping, price, restate
from controller.energy.inputs import Estate, load_estate
from controller.energy.lines import ATTRIBUTED, GAP_TOLERANCE_SECONDS, HourLine, estate_lines, gap_state, hour_ceil
from controller.register.models import EnergyBucket
from controller.timeutil import as_utc, hour_floor
from tests.controller.energy.estate import HOUR, MONDAY, bucket, device, site

START = MONDAY + 5 * HOUR + timedelta(minutes=20)  # not on the hour: the period covers whole hours
NOW = MONDAY + 70 * HOUR + timedelta(minutes=25)  # mid-hour: the last hour is attributed up to now only
END = MONDAY + 96 * HOUR


@pytest.fixture
def session(engine):
    with Session(engine) as session:
        yield session


def mixed_estate(session: Session, seed: int = 11) -> None:
    rng = random.Random(seed)
    sites = [site(session, "Oakfield Primary"), site(session, "Vale Secondary", trust="Vale Trust")]
    for n in range(9):
        at = sites[n % 2]
        pc = device(session, at, f"PC{n:02d}", ("desktop", "laptop", "desktop")[n % 3], f"Room {n % 3}")
        if n == 8:
            continue  # never heard of: no lines at all
        first = 30 if n == 7 else -20  # one first heard mid-period, the others before it
        hour = first
        while hour < 100:
            if rng.random() < 0.25:
                hour += rng.choice((1, 2, 7, 15))  # a run of silence
                continue
            when = MONDAY + hour * HOUR
            state = rng.choice(("active", "idle", "idle", "sleep", "off"))
            method = ("model", "rapl", "battery")[n % 3] if rng.random() < 0.5 else "model"
            if rng.random() < 0.2:
                part = rng.choice((1799.7, 1200.0, 3599.5, 3000.0))
                bucket(session, pc, when, rng.choice(("active", "idle")), method, rng.choice((6.5, 50.0, 12.25)), part)
                bucket(session, pc, when, rng.choice(("sleep", "off")), "model", rng.choice((1.0, 1.5)), 3600 - part)
            else:
                bucket(session, pc, when, state, method, rng.choice((6.5, 50.0, 12.25, 33.3)))
            if n % 4 == 0 and rng.random() < 0.6:
                bucket(session, pc, when, state, "metered", rng.choice((55.0, 61.7)))
            hour += 1
    session.commit()


def hour_by_hour(session: Session, estate: Estate, start: datetime, end: datetime, now: datetime) -> list[HourLine]:
    """The rules of controller/energy/lines.py, one hour of one device at a time."""
    until = min(as_utc(end), as_utc(now))
    start = hour_floor(start)
    stored = session.exec(select(EnergyBucket)).all()
    rows: dict[tuple[int, datetime], list[EnergyBucket]] = defaultdict(list)
    first: dict[int, datetime] = {}
    for b in stored:
        hour = as_utc(b.hour)
        first[b.device_id] = min(first.get(b.device_id, hour), hour)
        if start <= hour < hour_ceil(until):
            rows[b.device_id, hour].append(b)
    monitor = estate.catalogue.monitor()
    lines = []
    for d in estate.devices.values():
        if d.id not in first:
            continue
        earlier = [b for b in stored if b.device_id == d.id and as_utc(b.hour) < start and b.seconds > 0]
        last_hour = max((as_utc(b.hour) for b in earlier), default=None)
        last_state = gap_state([b.state for b in earlier if as_utc(b.hour) == last_hour]) if earlier else None
        hour = max(start, first[d.id])
        while hour < until:
            found = sorted(rows.get((d.id, hour), []), key=lambda b: (b.state, b.method))
            metered = [b for b in found if b.method == "metered"]
            found = metered or found
            screens = d.monitors and not metered
            covered, heard = Decimal(0), []
            for b in found:
                joules, seconds = Decimal(repr(b.joules)), Decimal(repr(b.seconds))
                factor = estate.catalogue.rapl_wall_factor if b.method == "rapl" else 1
                lines.append(HourLine(d.id, hour, b.state, b.method, seconds, joules * factor / 3600))
                if screens:
                    lines.append(HourLine(d.id, hour, b.state, "model", Decimal(0),
                                          d.monitors * monitor.watts(b.state) * seconds / 3600))
                covered += seconds
                heard += [b.state] if seconds > 0 else []
            last_state = gap_state(heard) if heard else last_state
            span = Decimal(min(3600, int((until - hour).total_seconds())))
            silent = span - covered
            if silent > GAP_TOLERANCE_SECONDS:
                state = last_state or "off"
                lines.append(HourLine(d.id, hour, state, ATTRIBUTED, silent, d.profile.watts(state) * silent / 3600))
                if screens:
                    lines.append(HourLine(d.id, hour, state, ATTRIBUTED, Decimal(0),
                                          d.monitors * monitor.watts(state) * silent / 3600))
            hour += HOUR
    return lines


def line_by_line(lines: list[HourLine], estate: Estate, group_by: str) -> Amounts:
    """The sums the long way: every line added on its own, its final key written out by hand."""
    dims = group_by.split(",")
    device_key = grouping(estate, group_by)
    amounts: dict = {}
    devices: dict = defaultdict(set)
    for line in lines:
        device = estate.devices[line.device_id]
        group = device_key(line.device_id)
        k = (group, device.site_id, line.hour, line.method, line.state, "")
        found = amounts.setdefault(k, [Decimal(0), Decimal(0)])
        found[0] += line.wh
        found[1] += line.seconds
        own = {"method": line.method, "state": line.state, "hour": line.hour.isoformat(),
               "day": line.hour.astimezone(estate.sites[device.site_id].zone).date().isoformat()}
        values = iter(group)
        devices[tuple(own[d] if d in own else next(values) for d in dims)].add(line.device_id)
    return Amounts(amounts, devices)


def test_the_lines_are_the_rules_applied_one_hour_at_a_time(session):
    mixed_estate(session)
    estate = load_estate(session)
    expected = hour_by_hour(session, estate, START, END, NOW)
    assert len(expected) > 500 and {line.method for line in expected} == {
        "model", "rapl", "battery", "metered", "attributed"}
    assert estate_lines(session, estate, START, END, NOW) == expected


def test_counting_hours_of_a_kind_gives_the_summary_of_adding_every_line(session):
    mixed_estate(session)
    estate = load_estate(session)
    lines = hour_by_hour(session, estate, START, END, NOW)
    for group_by in [g for g in GROUPS if g != "policy"] + ["site,device_class,state,method", "room,day"]:
        summary = energy_summary(session, START, END, group_by=group_by, now=NOW)
        by_hand = price(line_by_line(lines, estate, group_by), summary.start, summary.end, group_by, Pricer(estate))
        assert summary.to_json() == by_hand.to_json(), group_by
    reported, restated = restate(session, START, END, 2020, group_by="room", now=NOW)
    amounts = line_by_line(lines, estate, "room")
    assert reported.to_json() == price(amounts, START, END, "room", Pricer(estate)).to_json()
    assert restated.to_json() == price(amounts, START, END, "room", Pricer(estate, 2020)).to_json()
    assert restated.total.kgco2e != reported.total.kgco2e
