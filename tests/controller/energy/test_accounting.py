"""Energy, cost and carbon of a small estate, checked against figures worked by hand to the Wh and gram.

Every expected figure is written as the arithmetic from the watts and seconds in the fixture, the
catalogue's shipped watts (desktop off 1 W, laptop sleep 1.5 W, monitor on 25 W / off 0.3 W, RAPL to
wall ×1.54) and the published factors (2025: 0.17700 kgCO2e/kWh generation; T&D 2025: 0.01853).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlmodel import Session

from controller.energy.accounting import AccountingError, energy_summary, restate
from controller.energy.school_hours import SchoolHours
from tests.controller.energy.estate import HOUR, MONDAY, bucket, device, site

D = Decimal
END = MONDAY + 4 * HOUR  # 00:00-04:00 GMT on a Monday: all night rate, 15 p/kWh


def fixture_estate(session: Session) -> dict[str, int]:
    """Three devices, two rooms: a desktop on its model, a laptop on its battery, a desktop on a metered outlet."""
    oak = site(session)
    pc = device(session, oak, "OAK-ICT1-PC01", "desktop", "ICT 1")
    bucket(session, pc, MONDAY, "idle", "model", 50)  # 50 Wh, and its monitor on: 25 Wh
    bucket(session, pc, MONDAY + HOUR, "idle", "model", 50, 1800)  # 25 Wh; monitor 12.5 Wh
    bucket(session, pc, MONDAY + HOUR, "off", "model", 1, 1800)  # 0.5 Wh; monitor off 0.3 W × 0.5 h = 0.15 Wh
    # 02:00-04:00 nobody reports: last heard off, so off at 1 W + its monitor at 0.3 W = 1.3 Wh an hour.
    laptop = device(session, oak, "OAK-ICT1-LT01", "laptop", "ICT 1")
    bucket(session, laptop, MONDAY, "idle", "battery", 12)  # 12 Wh measured
    bucket(session, laptop, MONDAY + HOUR, "sleep", "model", 1.5)  # 1.5 Wh
    # 02:00-04:00 silent after sleep: asleep at the catalogue's 1.5 W, 1.5 Wh an hour.
    office = device(session, oak, "OAK-OFF-PC01", "desktop", "Office")
    bucket(session, office, MONDAY, "active", "metered", 65)  # 65 Wh from the outlet; the desk, so no monitor
    bucket(session, office, MONDAY, "idle", "model", 50)  # the agent's estimate of the same hour: ignored
    bucket(session, office, MONDAY + HOUR, "idle", "rapl", 6.5)  # 6.5 W × 1.54 = 10.01 Wh; monitor 25 Wh
    # 02:00-04:00 silent after idle: off at 1 W + monitor 0.3 W = 1.3 Wh an hour.
    session.commit()
    return {"pc": pc.id, "laptop": laptop.id, "office": office.id, "site": oak.id}


@pytest.fixture
def session(engine):
    with Session(engine) as session:
        yield session


def test_the_fixture_estate_adds_up_to_the_wh_and_the_gram(session):
    fixture_estate(session)
    pc_wh = 50 + 25 + 25 + 12.5 + 0.5 + 0.15 + 2 * 1.3  # 115.75
    laptop_wh = 12 + 1.5 + 2 * 1.5  # 16.5
    office_wh = 65 + 6.5 * 1.54 + 25 + 2 * 1.3  # 102.61
    total_wh = D(str(round(pc_wh + laptop_wh + office_wh, 6)))  # 234.86 Wh
    summary = energy_summary(session, MONDAY, END, group_by="device", now=END + HOUR)
    by_key = {row.key: row for row in summary.rows}
    assert by_key["Oakfield Primary / OAK-ICT1-PC01"].kwh == D("0.116")  # 115.75 Wh
    assert by_key["Oakfield Primary / OAK-ICT1-LT01"].kwh == D("0.017")  # 16.5 Wh
    assert by_key["Oakfield Primary / OAK-OFF-PC01"].kwh == D("0.103")  # 102.61 Wh
    total = summary.total
    assert total.kwh == (total_wh / 1000).quantize(D("0.001")) == D("0.235")
    # Night rate all four hours: 234.86 Wh × 15 p/kWh = 3.5229 p.
    assert total.cost_gbp == D("0.0352")
    # 234.86 Wh × 0.177 kg/kWh = 41.570 g; T&D at 2025's 0.01853 = 4.352 g.
    assert total.kgco2e == D("0.042")
    assert total.td_kgco2e == D("0.004")
    (part,) = total.carbon
    assert (part.year, part.factor_year, part.kg_per_kwh, part.td_year) == (2025, 2025, D("0.177"), 2025)
    assert total.devices == 3


def test_every_aggregate_reports_its_method_shares(session):
    fixture_estate(session)
    summary = energy_summary(session, MONDAY, END, group_by="room", now=END)
    ict = next(r for r in summary.rows if r.key == "Oakfield Primary / ICT 1")
    # model: PC 50+25+25+12.5+0.5+0.15 = 113.15, laptop 1.5 → 114.65; battery 12; attributed 2.6 + 3 = 5.6
    assert ict.kwh_by_method == {"battery": D("0.012"), "model": D("0.115"), "attributed": D("0.006")}
    assert ict.method_share["battery"] == (D(12) / D("132.25")).quantize(D("0.0001"))
    assert sum(ict.method_share.values()) == pytest.approx(1, abs=0.0005)
    office = next(r for r in summary.rows if r.key == "Oakfield Primary / Office")
    # metered 65; rapl 10.01; model (monitor beside the RAPL hour) 25; attributed 2.6
    assert office.kwh_by_method == {"metered": D("0.065"), "rapl": D("0.010"), "model": D("0.025"),
                                    "attributed": D("0.003")}


def test_a_metered_hour_ignores_the_agents_estimate_of_the_same_hour(session):
    ids = fixture_estate(session)
    summary = energy_summary(session, MONDAY, MONDAY + HOUR, group_by="device", now=END)
    office = next(r for r in summary.rows if r.key.endswith("OAK-OFF-PC01"))
    assert office.kwh == D("0.065") and office.kwh_by_method == {"metered": D("0.065")}
    assert ids["office"]


def test_silence_before_a_device_was_first_heard_of_is_not_attributed(session):
    fixture_estate(session)
    summary = energy_summary(session, MONDAY - 10 * HOUR, MONDAY, group_by="device", now=END)
    assert summary.rows == [] and summary.total.kwh == 0


def test_silence_is_attributed_only_up_to_now(session):
    fixture_estate(session)
    summary = energy_summary(session, MONDAY + 2 * HOUR, END, group_by="device", now=MONDAY + 2 * HOUR
                             + timedelta(minutes=30))
    laptop = next(r for r in summary.rows if r.key.endswith("OAK-ICT1-LT01"))
    assert laptop.kwh_by_method == {"attributed": D("0.001")}  # half an hour asleep at 1.5 W = 0.75 Wh
    assert laptop.kwh_by_state == {"sleep": D("0.001")}


def test_restating_prices_a_prior_year_at_the_current_factor(session):
    oak = site(session)
    pc = device(session, oak, "OAK-ICT1-PC02", "laptop")
    for h in range(10):  # 10 hours at 100 W measured = 1 kWh in November 2024
        bucket(session, pc, MONDAY.replace(year=2024) + h * HOUR, "active", "metered", 100)
    session.commit()
    start, end = MONDAY.replace(year=2024), MONDAY.replace(year=2024) + 10 * HOUR
    reported, restated = restate(session, start, end, 2025, now=end)
    assert reported.total.kwh == restated.total.kwh == D("1.000")
    assert reported.total.kgco2e == D("0.207")  # 1 kWh × 0.20705 = 207.05 g
    assert restated.total.kgco2e == D("0.177")  # 1 kWh × 0.17700
    assert (restated.total.carbon[0].year, restated.total.carbon[0].factor_year) == (2024, 2025)


def test_an_unknown_grouping_is_refused(session):
    with pytest.raises(AccountingError, match="cannot group by 'floor'"):
        energy_summary(session, MONDAY, END, group_by="floor")


def test_figures_per_school_day_divide_by_the_school_days_in_the_period(session):
    fixture_estate(session)
    week = energy_summary(session, MONDAY, MONDAY + 7 * 24 * HOUR, group_by="site", now=END,
                          hours=SchoolHours())
    # Monday 10 to Sunday 16 November 2025: five weekdays, no bank holiday. 234.86 Wh / 5 = 46.972 Wh.
    assert week.school_days == 5
    assert week.total.kwh_per_school_day == D("0.047") and week.rows[0].kwh_per_school_day == D("0.047")
    assert energy_summary(session, MONDAY, END, now=END).total.kwh_per_school_day is None  # only when asked
