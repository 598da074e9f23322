"""Tariff bands in local time across the clock changes, carbon factors by year, and calibrated watts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session

from controller.energy import carbon
from controller.energy.accounting import energy_summary
from controller.energy.carbon import CarbonFactorError
from controller.energy.inputs import load_estate
from controller.energy.savings import savings_summary
from controller.energy.tariff import TariffError, TariffSpec, mean_rate, parse_bands
from tests.controller.energy.estate import HOUR, MONDAY, action, bucket, device, site

D = Decimal
LONDON = ZoneInfo("Europe/London")
# Economy-7 style: night 00:30-07:30 on the wall clock every day, day rate otherwise.
ECONOMY_7 = [
    {"name": "night", "days": "all", "start": "00:30", "end": "07:30", "pence_per_kwh": "12"},
    {"name": "day", "days": "all", "start": "00:00", "end": "00:00", "pence_per_kwh": "28"},
]
SATURDAY = datetime(2026, 10, 24, tzinfo=UTC)  # BST (UTC+1); the clocks go back at 01:00 UTC on Sunday 25th


@pytest.fixture
def session(engine):
    with Session(engine) as session:
        yield session


def spec() -> TariffSpec:
    return TariffSpec("e7", datetime(2020, 1, 1, tzinfo=UTC), parse_bands(ECONOMY_7))


def test_bands_follow_the_wall_clock_across_the_october_change():
    # Saturday, BST: 06:00 UTC is 07:00-08:00 local, half night and half day: (12 + 28) / 2 = 20 p.
    assert mean_rate(spec(), SATURDAY + 6 * HOUR, LONDON) == 20
    assert mean_rate(spec(), SATURDAY + 7 * HOUR, LONDON) == 28  # 08:00-09:00 BST
    sunday = SATURDAY + 24 * HOUR  # GMT from 01:00 UTC
    assert mean_rate(spec(), sunday + 6 * HOUR, LONDON) == 12  # 06:00-07:00 GMT: all night
    assert mean_rate(spec(), sunday + 7 * HOUR, LONDON) == 20  # 07:00-08:00 GMT
    # The night of the change: 00:00-01:00 BST (half day, half night), then 01:00-02:00 twice, both night.
    assert [mean_rate(spec(), SATURDAY + h * HOUR, LONDON) for h in (23, 24, 25)] == [20, 12, 12]


def test_the_repeated_october_hour_is_billed_twice_because_the_energy_was_drawn_twice(session):
    oak = site(session, tariff=ECONOMY_7)
    meter = device(session, oak, "OAK-SRV01", "server")
    for h in range(23, 26):  # 1 kW from 00:00 BST to 01:00 GMT: three real hours
        bucket(session, meter, SATURDAY + h * HOUR, "active", "metered", 1000)
    session.commit()
    summary = energy_summary(session, SATURDAY + 23 * HOUR, SATURDAY + 26 * HOUR, now=SATURDAY + 48 * HOUR)
    assert summary.total.kwh == 3
    assert summary.total.cost_gbp == D("0.4400")  # 20 p + 12 p + 12 p


def test_a_tariff_must_price_every_minute_and_read_its_bands():
    with pytest.raises(TariffError, match="no band prices sat 00:00"):
        parse_bands([{"name": "weekdays", "days": "weekdays", "start": "00:00", "end": "00:00",
                      "pence_per_kwh": 20}])
    with pytest.raises(TariffError, match="'funday' is not a day"):
        parse_bands([{"days": ["funday"], "pence_per_kwh": 20}])
    with pytest.raises(TariffError, match="pence_per_kwh must be between 0 and 1000"):
        parse_bands([{"pence_per_kwh": -3}])


def test_energy_before_the_first_tariff_is_unpriced_not_free(session):
    oak = site(session, tariff=None)
    pc = device(session, oak, "OAK-PC01", "laptop")
    bucket(session, pc, MONDAY, "idle", "battery", 10)
    session.commit()
    summary = energy_summary(session, MONDAY, MONDAY + HOUR, now=MONDAY + HOUR)
    assert (summary.total.cost_gbp, summary.total.unpriced_kwh) == (None, D("0.010"))  # unpriced, not £0


def test_a_year_without_a_published_factor_uses_the_latest_earlier_one_and_says_so():
    factors = carbon.shipped()
    applied = factors.for_year(2026)
    assert (applied.year, applied.factor_year, applied.kg_per_kwh) == (2026, 2025, D("0.177"))
    assert (applied.td_year, applied.td_kg_per_kwh) == (2025, D("0.01853"))


def test_each_shipped_year_has_its_transmission_and_distribution_factor_and_names_its_edition():
    factors = carbon.shipped()
    assert {y: f.td for y, f in factors.years.items()} == {
        2022: D("0.01769"), 2023: D("0.01792"), 2024: D("0.01830"), 2025: D("0.01853")}
    assert factors.years[2024].generation == D("0.20705")  # kg CO2e; 0.20493 is the kg CO2 column alone
    assert "Conversion factors 2024, condensed set" in factors.years[2024].source
    assert factors.years[2025].source.endswith(
        "https://www.gov.uk/government/publications/greenhouse-gas-reporting-conversion-factors-2025")
    assert factors.for_year(2022).kg_per_kwh == D("0.19338") and factors.for_year(2022).td_year == 2022
    assert factors.for_year(2019).factor_year == 2022  # before the data: the earliest there is


def test_a_newly_published_factor_replaces_the_fallback(session):
    carbon.set_factor(session, 2026, 0.150, 0.012, "DESNZ 2026 (entered by the bursar)")
    session.commit()
    applied = carbon.load(session).for_year(2026)
    assert (applied.factor_year, applied.kg_per_kwh, applied.td_year) == (2026, D("0.15"), 2026)
    with pytest.raises(CarbonFactorError, match="between 0 and 2"):
        carbon.set_factor(session, 2026, 3.5, None, "typo")
    with pytest.raises(CarbonFactorError, match="--source"):
        carbon.set_factor(session, 2026, 0.15, None, " ")


def test_measured_idle_watts_calibrate_the_device_and_its_savings(session):
    oak = site(session)
    laptop = device(session, oak, "OAK-LT07", "laptop")
    for h in range(2):  # two hours idle on its battery at 11 W: the catalogue's 15 W is replaced
        bucket(session, laptop, MONDAY + (16 + h) * HOUR, "idle", "battery", 11)
    bucket(session, laptop, MONDAY + 18 * HOUR, "off", "model", 0.5)
    action(session, laptop, MONDAY + 18 * HOUR, until=MONDAY + 19 * HOUR)
    session.commit()
    profile = load_estate(session).devices[laptop.id].profile
    assert (profile.idle, profile.sleep, profile.origin) == (D(11), D("1.5"), "calibrated")
    summary = savings_summary(session, MONDAY, MONDAY + 24 * HOUR, now=MONDAY + 24 * HOUR)
    assert summary.saved_kwh == D("0.011")  # 11 W × 1 h - 0.5 Wh drawn off = 10.5 Wh, rounded half up
    assert summary.actions[0].idle_watts == 11


def test_each_hour_takes_the_factor_of_its_own_local_year(session):
    oak = site(session)
    pc = device(session, oak, "OAK-PC09", "laptop")
    new_year = datetime(2025, 1, 1, tzinfo=UTC)
    bucket(session, pc, new_year - HOUR, "active", "metered", 1000)  # 23:00-24:00 GMT on 31 December 2024
    bucket(session, pc, new_year, "active", "metered", 1000)  # 00:00-01:00 on 1 January 2025
    session.commit()
    summary = energy_summary(session, new_year - HOUR, new_year + HOUR, now=new_year + timedelta(days=1))
    assert [(p.year, p.kwh, p.kgco2e) for p in summary.total.carbon] == [(2024, 1, D("0.207")), (2025, 1, D("0.177"))]
    assert summary.total.kgco2e == D("0.384")  # 207.05 g + 177.00 g
