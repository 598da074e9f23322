"""Embodied carbon: shipped figures per model and class, overrides, and the two reporting views by hand."""

from datetime import date

import pytest

from controller.lifecycle.embodied import (
    Factors,
    Figure,
    amortised_kg,
    parse_overrides,
    purchase_year_kg,
    service_end,
    shipped,
)
from controller.lifecycle.states import Refused


def test_a_published_model_footprint_beats_the_class_default():
    factors = Factors(shipped(), {})
    latitude = factors.lookup("laptop", "Dell Inc.", "Latitude 5400")
    # Boavizta: Latitude 5400 gwp_total 315 kgCO2e, 81.6% of it manufacturing.
    assert latitude.kg_co2e == pytest.approx(315 * 0.816, abs=0.05)
    assert latitude.basis == "model" and "latitude-5400" in latitude.source and "ODbL" in latitude.source
    unknown_model = factors.lookup("desktop", "Dell Inc.", "OptiPlex 9999")
    assert (unknown_model.kg_co2e, unknown_model.lifetime_years, unknown_model.basis) == (280.0, 5.0, "class")
    assert factors.lookup("laptop", None, None).kg_co2e == 180.0
    assert factors.lookup("monitor").kg_co2e == 65.0
    assert factors.lookup("unknown") is None


def test_a_model_name_finds_the_shortest_published_name_it_starts():
    hit = Factors(shipped(), {}).lookup("chromebook", "Dell", "Latitude 5400")
    assert "Latitude 5400 Chromebook" in hit.source


def test_the_schools_own_figures_beat_the_shipped_ones():
    overrides = {("laptop", "", ""): Figure(200.0, 5.0, "our supplier's figure", "class (override)"),
                 ("laptop", "dell", "latitude 5400"): Figure(240.0, 6.0, "Dell 2024 PCF", "model (override)")}
    factors = Factors(shipped(), overrides)
    assert factors.lookup("laptop", "Dell Inc.", "Latitude 5400").kg_co2e == 240.0
    assert factors.lookup("laptop", "Dell Inc.", "Latitude 5410").basis == "model"  # shipped model still wins
    assert factors.lookup("laptop", "Acer", "TravelMate").kg_co2e == 200.0


def test_amortised_over_the_actual_life_against_all_in_the_year_of_purchase():
    # A 180 kg laptop bought 2022-09-01 and disposed of 2026-08-31: 1,460 days of life.
    bought, disposed = date(2022, 9, 1), date(2026, 8, 31)
    end = service_end(bought, 4, disposed, date(2026, 11, 23))
    assert end == disposed
    shares = {year: amortised_kg(180, bought, end, year) for year in range(2021, 2028)}
    assert shares[2021] == 0 and shares[2027] == 0
    assert shares[2022] == pytest.approx(180 * 122 / 1460)  # 1 Sep - 31 Dec
    assert shares[2023] == pytest.approx(45.0)  # 365 / 1460
    assert shares[2024] == pytest.approx(180 * 366 / 1460)
    assert shares[2026] == pytest.approx(180 * 242 / 1460)  # 1 Jan - 30 Aug
    assert sum(shares.values()) == pytest.approx(180)
    assert [purchase_year_kg(180, bought, y) for y in (2021, 2022, 2023)] == [0.0, 180, 0.0]


def test_a_device_in_service_is_spread_over_its_expected_life_or_longer_if_kept():
    assert service_end(date(2025, 1, 1), 5, None, date(2026, 11, 23)) == date(2030, 1, 1)
    assert amortised_kg(280, date(2025, 1, 1), date(2030, 1, 1), 2026) == pytest.approx(280 * 365 / 1826)
    kept = service_end(date(2018, 1, 1), 5, None, date(2026, 11, 23))
    assert kept == date(2026, 11, 23)  # past its expected life: spread over the life so far


def test_bad_override_rows_are_refused_with_their_line():
    good = "device_class,vendor,model,kg_co2e,lifetime_years,source\nlaptop,,,200,5,supplier sheet\n"
    assert [(r.device_class, r.kg_co2e) for r in parse_overrides(good)] == [("laptop", 200.0)]
    with pytest.raises(Refused, match="line 3: kg_co2e and lifetime_years must be numbers"):
        parse_overrides(good + "desktop,,,lots,5,x\n")
    with pytest.raises(Refused, match="lacks column"):
        parse_overrides("device_class,kg_co2e\nlaptop,1\n")
