"""The audit pack for the fixture trust (tests/controller/reports/estate.py), against arithmetic by hand.

Oakfield: 2.52 kWh (library) + 1.064 kWh (suite) = 3.584 kWh, 200 pupils. Brook: 3.36 kWh, no pupil
number. 0.177 kgCO2e/kWh for 2025. The prior year's week (10-16 November 2024) holds the library
laptop's buckets from Monday 11 November: 6 days × 24 h × 15 W = 2.16 kWh, at 2024's 0.20705 when first
reported and at 2025's 0.177 restated.
"""

from __future__ import annotations

import pytest

from controller.reports import audit, sources
from controller.reports.periods import parse_period
from tests.controller.reports.conftest import NOW
from tests.controller.reports.estate import TRUST, WEEK

OAK_KWH = 2.52 + 1.064
BROOK_KWH = 3.36
PRIOR_KWH = 6 * 24 * 15 / 1000


def approx(value: float):
    return pytest.approx(value, rel=1e-9, abs=1e-12)


@pytest.fixture
def pack(session, inputs):
    return audit.build(session, sources.resolve_scope(session, trust=TRUST), parse_period(WEEK), inputs, NOW)


def test_secr_figures_per_site_with_intensity_per_pupil_and_per_device(pack):
    oak, brook = sorted(pack.secr, key=lambda s: s.site != "Oakfield Primary")
    assert oak.kwh == approx(OAK_KWH)
    assert oak.t_co2e == approx(OAK_KWH * 0.177 / 1000)  # 0.000634 t
    assert oak.kwh_per_pupil == approx(OAK_KWH / 200)
    assert oak.kg_per_pupil == approx(OAK_KWH * 0.177 / 200)
    assert oak.kwh_per_device == approx(OAK_KWH / 2)
    assert (brook.kwh, brook.pupils, brook.kwh_per_pupil) == (approx(BROOK_KWH), None, None)
    assert pack.used.kwh == approx(OAK_KWH + BROOK_KWH)
    assert (pack.factor.year, float(pack.factor.kg_per_kwh)) == (2025, 0.177)


def test_the_prior_year_is_restated_with_this_years_factor(pack):
    oak = next(s for s in pack.secr if s.site == "Oakfield Primary")
    assert pack.prior.label == "2024-11-10..2024-11-16"
    assert oak.prior_kwh == approx(PRIOR_KWH)
    assert oak.prior_t_co2e_restated == approx(PRIOR_KWH * 0.177 / 1000)
    assert pack.prior_kg_as_reported == approx(PRIOR_KWH * 0.20705)  # at 2024's own factor
    assert pack.prior_factor.year == 2024


def test_the_methodology_names_only_the_methods_used_with_their_shares(pack):
    text = pack.methodology
    assert f"{(OAK_KWH) / (OAK_KWH + BROOK_KWH):.1%} estimated from the device's power model" in text  # 51.6%
    assert f"{BROOK_KWH / (OAK_KWH + BROOK_KWH):.1%} measured from the laptop battery's discharge" in text
    assert "metered" not in text and "RAPL" not in text and "attributed" not in text
    assert "0.177 kgCO2e/kWh" in text and "none is held for Brook Academy" in text


def test_standards_per_site(pack):
    oak, brook = sorted(pack.standards, key=lambda s: s.site != "Oakfield Primary")
    assert (oak.enforcing_share, brook.enforcing_share) == (1.0, 0.0)  # force-mode policy; none at Brook
    # Library: 7 of 7 DfE fields; the suite: no serial, no register entry: 0 of 7. 7 / 14.
    assert oak.register.completeness == 0.5
    assert brook.register.completeness == 0.0
    assert (oak.register.past_warranty, brook.register.past_warranty) == (1, 0)  # warranty ended 2024-09-01
    assert oak.register.disposal_completeness is None  # nothing disposed
    assert (oak.measured_share, brook.measured_share) == (0.0, approx(1.0))


def test_value_for_money_and_underused_devices(pack):
    """Hours in use per school week over the period (one week, 10-16 November 2025, five school days at both
    sites): the suite is active 08:00-16:00 on 5 weekdays = 40 h ÷ 5 school days × 5 = 40.00 h; the library
    and the hall laptops are idle all week = 0.00 h. Oakfield's mean: (40 + 0) ÷ 2 = 20 h; Brook's: 0 h.
    The two idle laptops are under the 2 h threshold: each saves a new laptop's 180 kgCO2e (the shipped
    class figure; neither has a model), 360 kgCO2e in all. Rooms ranked most used first."""
    oak = next(v for v in pack.value if v.site == "Oakfield Primary")
    device_years = 2 * 168 / 8760
    assert oak.device_years == approx(device_years)
    assert oak.kwh_per_device_year == approx(OAK_KWH / device_years)
    assert oak.pounds_per_device_year == approx(OAK_KWH * 0.30 / device_years)
    assert oak.hours_per_week == 20.0 and oak.underused == 1
    use = pack.utilisation
    assert {u.hostname: (u.school_weeks, u.school_days, str(u.in_use_hours), str(u.hours_per_week))
            for u in use.devices} == {"OAK-ICT-01": (1, 5, "40.00", "40.00"), "OAK-LIB-01": (1, 5, "0.00", "0.00"),
                                      "BRK-HALL-01": (1, 5, "0.00", "0.00")}
    assert [(g.rank, g.name, str(g.hours_per_week), g.under) for g in use.rooms] == [
        (1, "Oakfield Primary / ICT Suite", "40.00", 0), (2, "Brook Academy / Hall", "0.00", 1),
        (3, "Oakfield Primary / Library", "0.00", 1)]
    assert [(g.name, g.devices, str(g.hours_per_week)) for g in use.classes] == [("laptop", 3, "13.33")]
    assert [(r.hostname, r.embodied_kg_co2e) for r in use.redeploy] == [("BRK-HALL-01", 180.0), ("OAK-LIB-01", 180.0)]
    assert use.embodied_saved_kg == 360.0


def test_the_refresh_forecast_carries_embodied_carbon(pack):
    # The library laptop, bought 2022-09-01, is due after the lifecycle's 4 laptop years: 2026, at 180 kg.
    assert [(r.year, r.devices, r.embodied_kg) for r in pack.refresh] == [
        (2026, 1, 180.0), (2027, 0, 0.0), (2028, 0, 0.0), (2029, 0, 0.0), (2030, 0, 0.0)]


def test_every_policy_change_in_the_period_is_listed_with_who_and_what(pack):
    assert [(c.actor, c.action, c.policy, c.what) for c in pack.policy_changes] == [
        ("user:alice", "mode", "oakfield", "mode: observe → force"),
        ("controller:policy-dir", "update", "oakfield", "school_hours: 08:00-15:30 → 08:00-16:00"),
    ]  # the October creation is outside the period
