"""Savings a bursar can check by hand: per policy action, and before/after an observe-mode baseline.

Catalogue figures used: desktop idle 50 W and off 1 W; its monitor on 25 W, asleep or off 0.3 W.
Tariff: weekdays 07:00-19:00 at 30.2 p/kWh, otherwise 15 p/kWh. Carbon: 2025, 0.17700 kgCO2e/kWh.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from controller.cli import app
from controller.energy.savings import SavingsError, before_after, out_of_hours_waste, savings_summary
from tests.controller.energy.estate import HOUR, MONDAY, action, bucket, device, site

D = Decimal
HALF = timedelta(minutes=30)


@pytest.fixture
def session(engine):
    with Session(engine) as session:
        yield session


def shut_down_overnight(session: Session):
    """A desktop shut down by policy at 18:30 on Monday, needed again at 07:30 on Tuesday (GMT)."""
    oak = site(session)
    pc = device(session, oak, "OAK-ICT1-PC01", "desktop", "ICT 1")
    bucket(session, pc, MONDAY + 18 * HOUR, "idle", "model", 50, 1800)
    bucket(session, pc, MONDAY + 18 * HOUR, "off", "model", 1, 1800)
    # 19:00-07:00 the agent is off, so silent: attributed off.
    bucket(session, pc, MONDAY + 31 * HOUR, "off", "model", 1, 1800)
    bucket(session, pc, MONDAY + 31 * HOUR, "active", "model", 80, 1800)
    action(session, pc, MONDAY + 18 * HOUR + HALF, until=MONDAY + 31 * HOUR + HALF)
    return oak, pc


def test_a_policy_shutdown_saves_idle_draw_until_next_needed_minus_what_it_drew_off(session):
    shut_down_overnight(session)
    session.commit()
    summary = savings_summary(session, MONDAY, MONDAY + 2 * 24 * HOUR, now=MONDAY + 3 * 24 * HOUR)
    (saving,) = summary.actions
    idle = D(50) + D("0.3")  # the PC idle with its screen asleep
    assert saving.idle_watts == idle
    # 18:30-19:00 and 07:00-07:30: half an hour each; 19:00-07:00: 12 whole hours.
    counterfactual_wh = idle / 2 + 12 * idle + idle / 2  # 653.9
    actual_wh = (D("0.5") + D("0.15")) + 12 * (1 + D("0.3")) + (D("0.5") + D("0.15"))  # 16.9
    assert saving.counterfactual_kwh == D("0.654") and saving.actual_kwh == D("0.017")
    assert summary.saved_kwh == (counterfactual_wh - actual_wh) / 1000 == D("0.637")
    # Day rate for 18:30-19:00 and 07:00-07:30 (24.5 Wh each), night rate for the 12 hours (49 Wh each).
    pence = 2 * D("24.5") * D("30.2") / 1000 + 12 * 49 * 15 / D(1000)  # 10.2998 p
    assert summary.saved_gbp == (pence / 100).quantize(D("0.0001")) == D("0.1030")
    assert summary.saved_kgco2e == D("0.113")  # 637 Wh × 0.177 = 112.749 g


def test_natural_shutdowns_and_observed_actions_are_not_claimed(session):
    oak, pc = shut_down_overnight(session)
    laptop = device(session, oak, "OAK-ICT1-LT01", "laptop")
    bucket(session, laptop, MONDAY + 18 * HOUR, "off", "model", 0.5)  # switched off by its user: no action
    action(session, pc, MONDAY + 18 * HOUR, outcome="observed", until=MONDAY + 31 * HOUR)
    session.commit()
    summary = savings_summary(session, MONDAY, MONDAY + 2 * 24 * HOUR, now=MONDAY + 3 * 24 * HOUR)
    assert [s.hostname for s in summary.actions] == ["OAK-ICT1-PC01"]
    assert summary.saved_kwh == D("0.637")


def test_overlapping_actions_on_one_device_claim_each_hour_once(session):
    _, pc = shut_down_overnight(session)
    action(session, pc, MONDAY + 20 * HOUR, kind="sleep", until=MONDAY + 31 * HOUR + HALF)
    action(session, pc, MONDAY + 21 * HOUR)  # no "until": cannot be claimed, and says so
    session.commit()
    summary = savings_summary(session, MONDAY, MONDAY + 2 * 24 * HOUR, now=MONDAY + 3 * 24 * HOUR)
    assert summary.saved_kwh == D("0.637")
    assert len(summary.skipped) == 1 and "no 'until'" in summary.skipped[0]


def test_a_device_switched_back_on_early_saves_nothing_from_then(session):
    oak = site(session)
    pc = device(session, oak, "OAK-ICT1-PC02", "desktop")
    bucket(session, pc, MONDAY + 18 * HOUR, "off", "model", 1)  # off the whole hour: 1 Wh + monitor 0.3 Wh
    bucket(session, pc, MONDAY + 19 * HOUR, "idle", "model", 50)  # someone switched it on at 19:00
    bucket(session, pc, MONDAY + 20 * HOUR, "idle", "model", 50)
    action(session, pc, MONDAY + 18 * HOUR, until=MONDAY + 21 * HOUR)
    session.commit()
    summary = savings_summary(session, MONDAY, MONDAY + 24 * HOUR, now=MONDAY + 2 * 24 * HOUR)
    # Only 18:00-19:00 was off: 50.3 Wh counterfactual - 1.3 Wh drawn = 49 Wh.
    assert summary.saved_kwh == D("0.049")


def test_a_daytime_sleep_saves_while_asleep_in_school_hours_until_someone_wakes_it(session):
    """Daytime sleep (policies/README.md) is reported as a sleep with the end of school hours as its "until":
    the same rule claims its asleep time, and nothing after a teacher woke the PC."""
    oak = site(session)
    pc = device(session, oak, "OAK-STAFF-PC01", "desktop", "Staff Room")
    bucket(session, pc, MONDAY + 10 * HOUR, "sleep", "model", 2)  # asleep 10:00-11:00
    for hour in range(11, 16):  # a teacher woke it at 11:00 and used it for the rest of the day
        bucket(session, pc, MONDAY + hour * HOUR, "active", "model", 80)
    action(session, pc, MONDAY + 10 * HOUR, kind="sleep", until=MONDAY + 16 * HOUR)
    session.commit()
    summary = savings_summary(session, MONDAY, MONDAY + 24 * HOUR, now=MONDAY + 2 * 24 * HOUR)
    (saving,) = summary.actions
    # One hour of the PC idle with its screen asleep (50.3 Wh) less what it drew asleep (2 + 0.3 Wh).
    assert (saving.kind, saving.saved_kwh) == ("sleep", D("0.048"))


def desktop_week(session: Session):
    """Observe mode Monday and Tuesday (left on day and night); the policy acts from Wednesday."""
    oak = site(session)
    pc = device(session, oak, "OAK-ICT1-PC03", "desktop", "ICT 1")
    for day in range(4):
        for h in range(24):
            hour = MONDAY + (24 * day + h) * HOUR
            if day < 2 or 8 <= h < 18:
                bucket(session, pc, hour, "idle", "model", 50)
            else:
                bucket(session, pc, hour, "off", "model", 1)
    action(session, pc, MONDAY + 18 * HOUR, outcome="observed", mode="observe")
    action(session, pc, MONDAY + 42 * HOUR, outcome="observed", mode="observe")
    action(session, pc, MONDAY + 66 * HOUR + timedelta(minutes=5), until=MONDAY + 80 * HOUR)
    session.commit()
    return oak


def test_out_of_hours_energy_per_school_day_falls_after_the_observe_baseline(session):
    oak = desktop_week(session)
    result = before_after(session, oak.id, now=MONDAY + 4 * 24 * HOUR + 12 * HOUR)
    # Out of hours is 00:00-08:00 and 18:00-24:00: 14 hours a school day.
    assert (result.baseline.first_day.isoformat(), result.baseline.last_day.isoformat()) == ("2025-11-10",
                                                                                              "2025-11-11")
    assert result.baseline.school_days == 2 and result.after.school_days == 2
    assert result.baseline.kwh_per_school_day == D(14 * (50 + 25)) / 1000  # idle PC + monitor on: 1.050
    assert result.after.kwh_per_school_day == (14 * (1 + D("0.3")) / 1000).quantize(D("0.001"))  # 0.018
    assert result.change_kwh_per_school_day == D("-1.032")
    assert result.change_percent == D("-98.3")  # -1.032 / 1.050


def test_before_after_needs_an_observe_baseline(session):
    oak = site(session)
    session.commit()
    with pytest.raises(SavingsError, match="no observe-mode baseline"):
        before_after(session, oak.id)


def test_the_devices_left_on_out_of_hours_are_ranked_first(session):
    desktop_week(session)
    oak2 = site(session, "Birchwood Academy")
    quiet = device(session, oak2, "BIR-PC01", "laptop")
    bucket(session, quiet, MONDAY + 20 * HOUR, "idle", "model", 15)
    session.commit()
    ranked = out_of_hours_waste(session, MONDAY, MONDAY + 24 * HOUR, now=MONDAY + 2 * 24 * HOUR)
    assert [r.key for r in ranked] == ["Oakfield Primary / OAK-ICT1-PC03", "Birchwood Academy / BIR-PC01"]
    assert ranked[0].idle_kwh == D(14 * 75) / 1000 and ranked[0].idle_hours == 14
    assert ranked[1].idle_kwh == D("0.015")


def test_the_cli_baseline_counts_school_days_from_the_sites_term_calendar(engine, database_url, tmp_path):
    with Session(engine) as session:
        desktop_week(session)
    (tmp_path / "policies" / "calendars").mkdir(parents=True)
    (tmp_path / "policies" / "calendars" / "oak.yaml").write_text(
        "name: oak-2025-26\nnation: england\nterms:\n  - {name: Autumn term, start: 2025-09-03, end: 2025-12-19}\n"
        "closures: [{name: Polling station, start: 2025-11-11}]\n")
    (tmp_path / "policies" / "oak.yaml").write_text(
        "name: oakfield\napplies_to:\n  sites: [Oakfield Primary]\ncalendar: calendars/oak.yaml\n"
        "school_hours:\n  weekdays: \"08:00-18:00\"\nidle:\n  minutes_without_input: 20\naction: shutdown\n")
    result = CliRunner().invoke(app, ["energy", "baseline", "--site", "Oakfield Primary", "--json",
                                      "--database-url", database_url, "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    baseline = json.loads(result.stdout)["baseline"]
    # Tuesday was a closure: one school day, and all of Tuesday's 24 hours of idle PC + monitor count as
    # out of hours: 14 × 75 Wh on Monday + 24 × 75 Wh on Tuesday = 2.850 kWh for the one school day.
    assert (baseline["school_days"], baseline["out_of_hours_kwh"]) == (1, "2.850")
    assert baseline["kwh_per_school_day"] == "2.850"


def test_savings_at_a_site_without_a_tariff_are_unpriced_not_nothing(engine, database_url):
    """The overnight shutdown above at a site that has set no tariff: the kWh and carbon stand, the pounds
    are unknown, and every surface says so where the figure would be."""
    with Session(engine) as session:
        oak = site(session, tariff=None)
        pc = device(session, oak, "OAK-ICT1-PC01", "desktop", "ICT 1")
        bucket(session, pc, MONDAY + 18 * HOUR, "off", "model", 1)
        action(session, pc, MONDAY + 18 * HOUR, until=MONDAY + 19 * HOUR)
        session.commit()
        summary = savings_summary(session, MONDAY, MONDAY + 24 * HOUR, now=MONDAY + 2 * 24 * HOUR)
    # 50.3 Wh idle with the screen asleep, less 1.3 Wh drawn off: 49 Wh, 8.673 g at 0.177 kg/kWh.
    assert (summary.saved_kwh, summary.saved_gbp, summary.unpriced_kwh) == (D("0.049"), None, D("0.049"))
    assert summary.saved_kgco2e == D("0.009")
    assert summary.actions[0].saved_gbp is None
    result = CliRunner().invoke(app, ["energy", "savings", "--from", "2025-11-10", "--to", "2025-11-11",
                                      "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert "saved 0.0 kWh, unpriced: no tariff set, 0.0 kgCO2e" in result.stderr
    assert "unpriced: no tariff set" in result.stdout and "£0" not in result.output
