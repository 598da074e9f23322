"""`simulate` (replaying observed activity through the policies) and the out-of-hours compliance count."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from controller.policy.compliance import out_of_hours_on
from controller.policy.model import Action, IdleRule, Mode, Selector
from controller.policy.simulate import Observation, simulate
from tests.controller.policy.builders import CALENDARS, device, local, policy, power

RESIDUAL = {Action.SHUTDOWN: 1.0, Action.SLEEP: 2.0, Action.HIBERNATE: 1.0}


def evening(device_id: str = "7", first: str = "2026-02-09 16:00", count: int = 24, watts: float = 50.0,
            idle_minutes: float = 30, cpu: float = 2.0, sessions: int = 0) -> list[Observation]:
    """Five-minute reports from ``first`` on, a machine left on: idle, cool, nobody signed in by default."""
    start = local(first)
    return [Observation(device_id, start + timedelta(minutes=5 * n), start + timedelta(minutes=5 * (n + 1)), "idle",
                        idle_minutes * 60, cpu, sessions, watts * 300) for n in range(count)]


def watching(observations: list[Observation], watched: tuple[str, ...], running: tuple[str, ...] = ()):
    """The same reports from an agent whose schedule waits on ``watched`` processes."""
    return [replace(o, processes_watched=watched, processes_running=running) for o in observations]


def run(policies, observations, devices=None, modes=None, start="2026-02-09 00:00", end="2026-02-10 00:00"):
    devices = devices or [device()]
    return simulate(policies, CALENDARS, devices, observations, {d.device_id: RESIDUAL for d in devices},
                    local(start), local(end), modes)


def test_force_acts_after_the_first_idle_report_and_saves_the_rest_of_the_evening():
    result = run([policy(power=power(mode=Mode.FORCE))], evening())
    assert result.actions == {"shutdown/force": 1}
    # 23 more five-minute reports at 50 W that would have been off (1 W): 23 × 300 s × 49 W.
    assert result.saved_kwh == pytest.approx(23 * 300 * 49 / 3.6e6)
    assert result.observe_kwh == 0.0 and result.devices == 1 and result.observations == 24


def test_observe_records_and_keeps_its_would_be_saving_apart():
    result = run([policy()], evening())
    assert result.actions == {"shutdown/observe": 1}
    assert result.saved_kwh == 0.0 and result.observe_kwh == pytest.approx(23 * 300 * 49 / 3.6e6)


def test_a_mode_switch_is_projected_with_the_same_observations():
    now = run([policy()], evening())
    after = run([policy()], evening(), modes={"hillside": Mode.WARN})
    assert after.actions == {"shutdown/warn": 1} and after.saved_kwh == pytest.approx(now.observe_kwh)


def test_passive_skips_while_a_user_is_signed_in_and_saves_nothing():
    result = run([policy(power=power(mode=Mode.PASSIVE))], evening(sessions=1))
    assert result.actions == {} and result.skipped == 24 and result.saved_kwh == 0.0


def test_school_hours_and_busy_machines_save_nothing():
    school_day = run([policy(power=power(mode=Mode.FORCE))], evening(first="2026-02-09 09:00"))
    busy = run([policy(power=power(mode=Mode.FORCE))], evening(cpu=60.0))
    assert school_day.actions == {} == busy.actions and school_day.saved_kwh == 0.0 == busy.saved_kwh


def test_sleep_saves_less_than_shutdown_by_its_residual_draw():
    result = run([policy(power=power(mode=Mode.FORCE, action=Action.SLEEP))], evening())
    assert result.saved_kwh == pytest.approx(23 * 300 * 48 / 3.6e6)


def test_the_device_is_needed_again_at_the_next_school_day():
    """Off until the power-down window ends: reports after the wake time save nothing more."""
    overnight = evening(first="2026-02-09 18:00", count=12) + evening(first="2026-02-10 08:30", count=12)
    result = run([policy(power=power(mode=Mode.FORCE))], overnight, end="2026-02-11 00:00")
    assert result.actions == {"shutdown/force": 1} and result.saved_kwh == pytest.approx(11 * 300 * 49 / 3.6e6)


def test_out_of_hours_compliance_counts_awake_devices_by_site_and_class():
    school = policy(never_power_down=(Selector(tags=("server",)),))
    fleet = [(device(device_id="1"), "idle"), (device(device_id="2"), "active"), (device(device_id="3"), "off"),
             (device(device_id="4", device_class="laptop"), "idle"),
             (device(device_id="5", tags=("server",), device_class="server"), "active")]
    assert out_of_hours_on([school], CALENDARS, fleet, local("2026-02-09 19:00")) == {
        ("Hillside Primary", "desktop"): 2, ("Hillside Primary", "laptop"): 1}
    assert out_of_hours_on([school], CALENDARS, fleet, local("2026-02-09 10:00")) == {}


def test_simulate_ignores_reports_outside_the_period():
    result = run([policy(power=power(mode=Mode.FORCE))], evening(first="2026-02-12 18:00"))
    assert result.devices == 0 and result.saved_kwh == 0.0
    assert isinstance(result.start, datetime)


RENDERS = power(mode=Mode.WARN, idle=IdleRule(minutes_without_input=20, cpu_below_percent=10,
                                              processes_absent=("obs64.exe", "blender.exe")))


def test_a_policy_waiting_on_processes_predicts_actions_from_what_the_agent_reported():
    reported = run([policy(power=RENDERS)], watching(evening(), ("obs64.exe", "blender.exe")))
    rendering = run([policy(power=RENDERS)], watching(evening(), ("obs64.exe", "blender.exe"), ("Blender.exe",)))
    assert reported.actions == {"shutdown/warn": 1} and reported.saved_kwh > 0
    assert rendering.actions == {} and rendering.saved_kwh == 0.0


def test_reports_that_did_not_look_for_a_policys_process_predict_nothing():
    """Older agents, or a schedule from before the policy named blender.exe: the agent decides, not the preview."""
    silent = run([policy(power=RENDERS)], evening())
    partly = run([policy(power=RENDERS)], watching(evening(), ("obs64.exe",)))
    assert silent.actions == {} == partly.actions
