"""`simulate` (replaying observed activity through the policies) and the out-of-hours compliance count."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from controller.policy.compliance import out_of_hours_on
from controller.policy.engine import context, decide_in
from controller.policy.loader import load
from controller.policy.model import Action, Activity, DeviceFacts, IdleRule, Intent, Mode, Outcome, Selector
from controller.policy.plan import plan
from controller.policy.simulate import DeviceResult, Observation, Simulation, decisive_spans, simulate
from tests.conftest import REPO
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
    return [o._replace(processes_watched=watched, processes_running=running) for o in observations]


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


WEEK = local("2026-02-13 00:00"), local("2026-02-20 00:00")  # Fri to Fri: the February half term


@pytest.fixture(scope="module")
def estate():
    return example_week(*WEEK)


class TestTheFastReplayAnswersAsTheReportByReportOne:
    """`policy simulate` and the console's preview replay a week of an estate: each report's day is worked
    out once per context of devices (as plan shares schedules), and reports asleep or off are counted, not
    replayed. Both must change nothing. Fixture: the example policies and calendars shipped in policies/
    (written from the README and a local authority's published term dates), a week across a half term
    and a Wednesday maintenance window, devices of three schools, rooms and tags, busy, left on, some signed in."""

    START, END = WEEK

    def test_asleep_and_off_reports_counted_apart_give_the_same_simulation(self, estate):
        examples, devices, reports = estate
        residual = {d.device_id: RESIDUAL for d in devices}
        awake = [r for r in reports if r.state in ("active", "idle")]
        quiet = Counter(r.device_id for r in reports if r.state not in ("active", "idle"))
        for modes in (None, {"hillside-primary": Mode.FORCE}):
            every = simulate(examples.policies, examples.calendars, devices, reports, residual, self.START,
                             self.END, modes)
            split = simulate(examples.policies, examples.calendars, devices, awake, residual, self.START, self.END,
                             modes, quiet)
            assert split == every
            assert every.actions and every.observations == len(reports) and every.devices == len(devices)

    def test_reading_only_the_decisive_reports_gives_the_same_simulation(self, estate):
        """What the database read relies on (controller.policy.replay.period): reports outside every span
        where a decision could be taken or reach, for the modes replayed, are counted and not read."""
        examples, devices, reports = estate
        residual = {d.device_id: RESIDUAL for d in devices}
        switched = {"hillside-primary": Mode.FORCE}
        spans = decisive_spans(examples.policies, examples.calendars, devices, self.START, self.END, (None, switched))
        decisive = [r for r in reports if in_spans(r, spans[r.device_id].spans)]
        quiet = Counter(r.device_id for r in reports)
        quiet.subtract(r.device_id for r in decisive)
        for modes in (None, switched):
            every = simulate(examples.policies, examples.calendars, devices, reports, residual, self.START,
                             self.END, modes)
            assert simulate(examples.policies, examples.calendars, devices, decisive, residual, self.START,
                            self.END, modes, quiet) == every
            assert every.actions
        assert len(decisive) < len(reports)  # a half-term week: little of it is school hours, but some

    def test_the_schedule_replay_gives_the_figures_of_asking_the_engine_at_every_report(self, estate):
        examples, devices, reports = estate
        residual = {d.device_id: RESIDUAL for d in devices}
        for modes in (None, {"hillside-primary": Mode.FORCE}, {"northgate-academy": Mode.PASSIVE}):
            fast = simulate(examples.policies, examples.calendars, devices, reports, residual, self.START, self.END,
                            modes)
            assert fast == report_by_report(examples, devices, reports, residual, self.START, self.END, modes)
        assert fast.actions and fast.skipped


def in_spans(observation: Observation, spans) -> bool:
    """What controller.policy.replay.observations asks of each report in SQL: it ends at or after a span's
    start and starts before its end (None: open on that side)."""
    return any((start is None or observation.end >= start) and (end is None or observation.start < end)
               for start, end in spans)


WATCHED = ("obs64.exe", "blender.exe")  # secondary.yaml's processes_absent


def example_week(start, end):
    examples = load([REPO / "policies"])
    devices = [DeviceFacts(device_id=str(n), hostname=f"PC{n:03d}", site=site, device_class=kind,
                           tags=("server",) if n % 11 == 0 else (), group=room)
               for n, (site, kind, room) in enumerate(
                   (site, kind, room) for site in ("Hillside Primary", "Northgate Academy", "Riverside College")
                   for kind in ("desktop", "laptop") for room in ("Library", "ICT Suite 1", None))]
    reports = []
    for d in devices:
        n = int(d.device_id)
        at = start + timedelta(seconds=37 * n)
        while at < end:
            hour = at.hour
            busy = 8 <= hour < 16 and at.weekday() < 5
            state = ("active" if busy else "idle") if busy or n % 3 else ("sleep", "off")[n % 2]
            reports.append(Observation(d.device_id, at, at + timedelta(minutes=15), state,
                                       60.0 if busy else 3600.0, 30.0 if busy else 2.0,
                                       1 if busy or n % 5 == 2 else 0,  # some left signed in
                                       45.0 * 900 if state in ("active", "idle") else None,
                                       processes_watched=WATCHED if n % 2 else (),
                                       processes_running=WATCHED[:1] if busy and n % 2 else ()))
            at += timedelta(minutes=15)
    return examples, devices, reports


def report_by_report(examples, devices, reports, residual, start, end, modes):
    """The replay as first written: the engine asked at the end of every awake report (the specification
    the schedule-reading replay must match)."""
    policies = [replace(p, power=replace(p.power, mode=modes[p.name])) if p.power and p.name in (modes or {}) else p
                for p in examples.policies]
    by_id = {d.device_id: d for d in devices}
    rows_of: dict[str, list[Observation]] = {}
    for r in reports:
        if r.device_id in by_id and start <= r.end and r.start < end:
            rows_of.setdefault(r.device_id, []).append(r)
    schedules = plan(policies, examples.calendars, [by_id[d] for d in rows_of], start, (end - start).days + 2)
    counts, skipped, results = Counter(), 0, []
    for device_id, rows in sorted(rows_of.items()):
        ctx = context(policies, examples.calendars, by_id[device_id])
        off_until, off_action, observing, saved, observed, acted = None, None, False, 0.0, 0.0, 0
        for row in sorted(rows, key=lambda r: r.start):
            if row.state not in ("active", "idle"):
                continue
            if off_until is not None and row.start < off_until:
                overlap = (min(row.end, off_until) - row.start).total_seconds()
                joules = max(0.0, row.joules / 900 - residual[device_id][off_action]) * min(overlap, 900)
                observed, saved = (observed + joules, saved) if observing else (observed, saved + joules)
                continue
            activity = Activity(row.idle_seconds / 60, row.cpu_percent, row.sessions,
                                row.processes_running if row.processes_watched else None, row.processes_watched or None)
            decision = decide_in(replace(ctx, device=replace(ctx.device, activity=activity)), row.end)
            if decision.intent is not Intent.POWER_DOWN:
                continue
            skipped += decision.outcome is Outcome.RETRY_LATER
            if decision.outcome not in (Outcome.ACT, Outcome.WARN, Outcome.RECORD_ONLY):
                continue
            acted += 1
            counts[f"{decision.action}/{decision.mode}"] += 1
            window = next(w for w in schedules[device_id].power_down_windows if w.start <= row.end < w.end)
            off_until, off_action = window.end, decision.action
            observing = decision.outcome is Outcome.RECORD_ONLY
        results.append(DeviceResult(device_id, acted, saved / 3.6e6, observed / 3.6e6))
    return Simulation(start, end, len(rows_of), sum(map(len, rows_of.values())), dict(sorted(counts.items())), skipped,
                      sum(r.saved_kwh for r in results), sum(r.observe_kwh for r in results), tuple(results))
