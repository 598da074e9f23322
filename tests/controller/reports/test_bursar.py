"""The bursar report on the fixture estate (tests/controller/reports/estate.py), against arithmetic by hand.

Hours in the week: 7 × 24 = 168. Oakfield's school hours: 5 weekdays × 8 h (08:00-16:00) = 40 h.
Brook has no policy, so the energy package's school day: 5 × 10 h (08:00-18:00) = 50 h.
Flat 30 p/kWh; 0.177 kgCO2e/kWh (2025).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller.policy.models import PolicyState
from controller.reports import bursar, sources
from controller.reports.periods import parse_period
from controller.reports.service import load_inputs, with_switched_modes
from tests.controller.energy.estate import bucket, device, site
from tests.controller.reports.conftest import NOW
from tests.controller.reports.estate import FLAT, TRUST, WEEK

LIBRARY_KWH = 168 * 15 / 1000  # 2.52
SUITE_KWH = (40 * 25 + 128 * 0.5) / 1000  # 1.064
HALL_KWH = 168 * 20 / 1000  # 3.36
USED_KWH = LIBRARY_KWH + SUITE_KWH + HALL_KWH  # 6.944
# The suite was shut down at 16:00 each weekday until 08:00 the next morning (16 h), five times, and was
# off all that time: left idle it would have drawn the laptop catalogue's 15 W instead of 0.5 W.
SAVED_KWH = 5 * 16 * (15 - 0.5) / 1000  # 1.16
LIBRARY_WASTE = (5 * 16 * 15 / 1000, 2 * 24 * 15 / 1000)  # school days 1.2, weekend 0.72
HALL_WASTE = (5 * 14 * 20 / 1000, 2 * 24 * 20 / 1000)  # school days 1.4, weekend 0.96


def approx(value: float):
    return pytest.approx(value, rel=1e-9, abs=1e-9)


@pytest.fixture
def trust_report(session, inputs):
    scope = sources.resolve_scope(session, trust=TRUST)
    return bursar.build(session, scope, parse_period(WEEK), inputs, NOW)


def test_used_saved_and_baseline_add_up_in_kwh_pounds_and_carbon(trust_report):
    r = trust_report
    assert r.used.kwh == approx(USED_KWH)
    assert r.used.pounds == approx(USED_KWH * 0.30)  # £2.0832
    assert r.used.kg_co2e == approx(USED_KWH * 0.177)  # 1.229088 kg
    assert r.saved.kwh == approx(SAVED_KWH)
    assert r.saved.pounds == approx(SAVED_KWH * 0.30)
    assert r.saved.kg_co2e == approx(round(SAVED_KWH * 0.177, 3))  # the energy package rounds to the gram
    assert r.baseline.kwh == approx(USED_KWH + SAVED_KWH)  # 8.104 kWh
    assert r.unclaimed == ()  # every shutdown said when the device is next needed
    assert (r.factor.year, float(r.factor.kg_per_kwh)) == (2025, 0.177)


def test_each_site_has_its_own_line_and_the_lines_add_up(trust_report):
    lines = {s.site: s for s in trust_report.sites}
    assert lines["Oakfield Primary"].used.kwh == approx(LIBRARY_KWH + SUITE_KWH)
    assert lines["Brook Academy"].used.kwh == approx(HALL_KWH)
    assert (lines["Oakfield Primary"].devices, lines["Brook Academy"].devices) == (2, 1)
    assert (lines["Oakfield Primary"].saved.kwh, lines["Brook Academy"].saved.kwh) == (approx(SAVED_KWH), 0.0)
    assert sum(s.used.kwh for s in trust_report.sites) == approx(trust_report.used.kwh)


def test_the_measured_share_is_the_battery_measured_hall_laptop(trust_report):
    assert trust_report.measured_share == approx(HALL_KWH / USED_KWH)  # 48.4%
    assert {m.method: m.kwh for m in trust_report.methods} == {"battery": approx(HALL_KWH),
                                                               "model": approx(LIBRARY_KWH + SUITE_KWH)}


def test_out_of_hours_waste_is_idle_energy_outside_each_sites_school_hours(trust_report):
    rooms = [(w.site, w.name, w.waste.kwh) for w in trust_report.top_rooms]
    # Hall: 168 - 50 = 118 idle hours out of hours × 20 W; Library: 168 - 40 = 128 h × 15 W. The suite is
    # active in school hours and off otherwise: it wastes nothing and is not listed.
    assert rooms == [("Brook Academy", "Hall", approx(118 * 20 / 1000)),
                     ("Oakfield Primary", "Library", approx(128 * 15 / 1000))]
    assert [w.name for w in trust_report.top_devices] == ["BRK-HALL-01", "OAK-LIB-01"]
    assert trust_report.wasted.kwh == approx(2.36 + 1.92)


def test_recommendations_annualise_school_day_and_other_day_waste_separately(trust_report):
    hall, library = trust_report.recommendations
    # Hall: 1.4 kWh over 5 school days × 195 + 0.96 kWh over 2 other days × 170 = 54.6 + 81.6 = 136.2 kWh.
    hall_kwh = HALL_WASTE[0] / 5 * 195 + HALL_WASTE[1] / 2 * 170
    assert hall.annual.kwh == approx(hall_kwh)
    assert hall.annual.pounds == approx(hall_kwh * 0.30)  # £40.86
    assert hall.annual.kg_co2e == approx(hall_kwh * 0.177)  # 24.1 kg
    assert hall.action == "extend power-down to Hall (Brook Academy)"  # no policy powers it down
    assert hall.sentence() == ("extend power-down to Hall (Brook Academy): about £40.86 and 24.1 kgCO2e a year "
                               "(136.2 kWh), provisional")  # a week: 5 school days observed, under 10
    # Library: Oakfield's calendar covers 2025-26 with its autumn term (3 Sep-19 Dec, 78 weekdays less a
    # 5-day half term: 73) and spring term (5 Jan-27 Mar: 60): 133 school days, 365 - 133 = 232 others.
    # 1.2 / 5 × 133 + 0.72 / 2 × 232 = 31.92 + 83.52 = 115.44 kWh; its force-mode policy already acts.
    assert library.annual.kwh == approx(LIBRARY_WASTE[0] / 5 * 133 + LIBRARY_WASTE[1] / 2 * 232)
    assert library.basis.startswith("from 5 school days observed of 133 in 2025-26 by term calendar oakfield-2025-26")
    assert library.action == "power down idle machines sooner in Library (Oakfield Primary)"
    assert hall.basis.startswith("from 5 school days observed of 195 in a typical English school year (no term "
                                 "calendar covers 2025-26): 1.4 kWh idle out of hours ÷ 5 × 195")
    assert "1.0 kWh on 2 other days observed ÷ 2 × 170 = 136.2 kWh a year; × 30.0 p/kWh" in hall.basis


def test_before_and_after_says_why_there_is_no_comparison_without_an_observe_baseline(trust_report):
    assert [(b.site, b.baseline_kwh_per_school_day, b.note) for b in trust_report.before_after] == [
        ("Brook Academy", None, "no observe-mode baseline: run the site's policy in observe mode first"),
        ("Oakfield Primary", None, "no observe-mode baseline: run the site's policy in observe mode first")]


def test_wake_and_power_down_outcomes_are_counted_by_kind(trust_report):
    assert [(o.kind, o.outcome, o.count) for o in trust_report.outcomes] == [
        ("shutdown", "done", 5), ("shutdown", "skipped", 1), ("wake", "confirmed", 1), ("wake", "failed", 1)]


def test_a_site_report_covers_only_that_site(session, inputs):
    scope = sources.resolve_scope(session, site="Brook Academy")
    report = bursar.build(session, scope, parse_period(WEEK), inputs, NOW)
    assert report.used.kwh == approx(HALL_KWH)
    assert report.outcomes == ()  # every action in the fixture was at Oakfield
    assert [r.room for r in report.recommendations] == ["Hall"]


def test_a_mode_switched_in_the_console_counts_as_the_policy_in_force(session, inputs):
    session.add(PolicyState(name="oakfield", content_hash="-", mode="observe", updated_by="user:nora"))
    session.commit()
    scope = sources.resolve_scope(session, site="Oakfield Primary")
    report = bursar.build(session, scope, parse_period(WEEK), with_switched_modes(session, inputs), NOW)
    assert report.recommendations[0].action.startswith("switch policy oakfield from observe to enforce")


def test_an_observe_mode_room_is_told_to_switch_to_enforce(session, inputs, policy_dir):
    (policy_dir / "oakfield.yaml").write_text((policy_dir / "oakfield.yaml").read_text().replace("force", "observe"))
    scope = sources.resolve_scope(session, site="Oakfield Primary")
    report = bursar.build(session, scope, parse_period(WEEK), load_inputs(policy_dir), NOW)
    assert report.recommendations[0].action == ("switch policy oakfield from observe to enforce for "
                                                "Library (Oakfield Primary)")


@pytest.mark.parametrize("period, inside, outside", [
    # 1 April 2025 00:00 BST is 31 March 23:00 UTC: that hour opens FY2025-26, the one before closes FY2024-25.
    ("FY2025-26", datetime(2025, 3, 31, 23, tzinfo=UTC), datetime(2025, 3, 31, 22, tzinfo=UTC)),
    # 1 September 2025 00:00 BST is 31 August 23:00 UTC: the academic year starts there.
    ("2025-26", datetime(2025, 8, 31, 23, tzinfo=UTC), datetime(2025, 8, 31, 22, tzinfo=UTC)),
    # The autumn term's last day, 19 December, ends at midnight GMT: 23:00 UTC is in, midnight is out.
    ("autumn-2025", datetime(2025, 12, 19, 23, tzinfo=UTC), datetime(2025, 12, 20, 0, tzinfo=UTC)),
])
def test_a_period_takes_the_hours_of_its_local_days_across_the_clock_changes(session, inputs, period, inside, outside):
    edge = site(session, "Edge School", tariff=FLAT)
    laptop = device(session, edge, "EDGE-01", "laptop", "Office")
    bucket(session, laptop, inside, "idle", "model", 30)
    bucket(session, laptop, outside, "idle", "model", 70)
    session.commit()
    scope = sources.resolve_scope(session, site="Edge School")
    when = parse_period(period, calendars=inputs.site_calendars("Oakfield Primary"))  # the term from Oakfield's
    report = bursar.build(session, scope, when, inputs, NOW)
    reported = {m.method: m.kwh for m in report.methods}
    assert reported["model"] == approx(0.030)  # the 30 W hour only; the rest of the period is attributed
