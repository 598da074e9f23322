"""The agent's enforcer: what it does in each mode, what it records and why, and the exact command lines.

The clock and the machine's readings are injected; the executor records every argv instead of running
it, so nothing here powers the test machine off. The per-OS command lines are checked for all three OSes.
The decisions that depend on the person at the keyboard are also made through a real session desk,
with helpers speaking the real protocol over a real Unix socket (tests/agent/sessions.py).
"""

from __future__ import annotations

import json
import stat
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import psutil
import pytest

from agent.config import AgentConfig
from agent.enforcer import CommandResult, Enforcer, Reading, judge_idle, live_probe, write_private
from agent.platform.power_actions import Verb, for_platform
from agent.protocol import (
    ActionOutcome,
    AgentSchedule,
    BatchAck,
    EnforcementMode,
    IdleCriteria,
    PowerActionKind,
    ScheduleIntent,
    ScheduleWindow,
    WarningSettings,
    from_wire,
    to_wire,
)
from agent.runner import Runner
from agent.session.desk import Notice
from agent.session.view import SystemIdle
from agent.spool import Spool
from tests.agent.sessions import ME, T0, Bench, Clock

IDLE_RULE = IdleCriteria(minutes_without_input=20, cpu_below_percent=10)
IDLE = Reading(idle_seconds=25 * 60, cpu_percent=1.2, sessions=0)


class Machine:
    """The readings the probe returns and every command the enforcer asked to run."""

    def __init__(self, reading: Reading = IDLE, returncode: int = 0) -> None:
        self.reading = reading
        self.returncode = returncode
        self.ran: list[list[str]] = []

    def probe(self, criteria: IdleCriteria | None) -> Reading:
        return self.reading

    def execute(self, argv: Sequence[str]) -> CommandResult:
        self.ran.append(list(argv))
        return CommandResult(self.returncode, "" if self.returncode == 0 else "Access denied")


class Screens:
    """The warnings the enforcer put on screen, and the Postpone presses the test makes."""

    def __init__(self) -> None:
        self.shown: list[Notice] = []
        self.withdrawn = 0
        self.pressed: dict[str, str] = {}

    def warn(self, notice: Notice) -> int:
        self.shown.append(notice)
        return 1

    def withdraw(self) -> None:
        self.withdrawn += 1

    def postponed(self, notice_id: str) -> str | None:
        return self.pressed.get(notice_id)

    def press(self, user: str = "alice") -> None:
        self.pressed[self.shown[-1].id] = user


def schedule(mode: EnforcementMode, action: PowerActionKind = PowerActionKind.SHUTDOWN, offset: int = 0,
             warning: WarningSettings | None = None, retry: int = 30, start: datetime = T0,
             idle: IdleCriteria = IDLE_RULE) -> AgentSchedule:
    return AgentSchedule(
        version=f"v-{mode}", timezone="Europe/London", valid_until=start + timedelta(hours=48), policy="hillside",
        windows=(ScheduleWindow(start - timedelta(hours=2), start, ScheduleIntent.KEEP_ON, reason="school_hours"),
                 ScheduleWindow(start, start + timedelta(hours=13, minutes=30), ScheduleIntent.POWER_DOWN, action,
                                mode, "out_of_hours"),
                 ScheduleWindow(start + timedelta(hours=13, minutes=30), start + timedelta(hours=48),
                                ScheduleIntent.KEEP_ON, reason="wake_before_school")),
        idle=idle, warning=warning, retry_minutes=retry, start_offset_seconds=offset)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def machine() -> Machine:
    return Machine()


@pytest.fixture
def screens() -> Screens:
    return Screens()


@pytest.fixture
def enforcer(tmp_path, clock, machine, screens) -> Enforcer:
    return Enforcer(tmp_path / "power-schedule.json", machine.probe, machine.execute, for_platform("linux"), clock,
                    warnings=screens)


def outcomes(actions) -> list[tuple[str, str]]:
    return [(a.outcome.value, a.reason) for a in actions]


def test_observe_records_what_it_would_do_once_per_window_and_never_acts(enforcer, clock, machine):
    enforcer.update(schedule(EnforcementMode.OBSERVE))
    for _ in range(5):
        enforcer.tick()
        clock.advance(1)
    (action,) = enforcer.drain()
    assert (action.outcome, action.kind, action.mode) == (ActionOutcome.OBSERVED, PowerActionKind.SHUTDOWN,
                                                          EnforcementMode.OBSERVE)
    assert action.reason == "would shutdown: idle 25 min, cpu 1.2%"
    assert action.until == T0 + timedelta(hours=13, minutes=30)  # when the device is next needed
    assert machine.ran == []


def test_nothing_happens_in_school_hours_or_while_the_machine_is_in_use(enforcer, clock, machine):
    enforcer.update(schedule(EnforcementMode.FORCE))
    clock.now = T0 - timedelta(minutes=30)  # school hours
    enforcer.tick()
    clock.now = T0 + timedelta(minutes=5)
    machine.reading = Reading(idle_seconds=3 * 60, cpu_percent=1.0, sessions=1)  # someone is typing
    enforcer.tick()
    machine.reading = Reading(idle_seconds=None, cpu_percent=1.0, sessions=0)  # input idle unknowable: fail safe
    enforcer.tick()
    assert enforcer.drain() == () and machine.ran == []


def test_force_shuts_down_through_logind_once_idle(enforcer, clock, machine):
    enforcer.update(schedule(EnforcementMode.FORCE))
    machine.reading = Reading(idle_seconds=25 * 60, cpu_percent=1.2, sessions=1)  # signed in, but away
    enforcer.tick()
    assert machine.ran == [["systemctl", "poweroff"]]
    (action,) = enforcer.drain()
    assert (action.outcome, action.reason) == (ActionOutcome.DONE, "shutdown (force): idle 25 min, cpu 1.2%")


def test_passive_skips_while_a_user_is_signed_in_and_retries_after_retry_minutes(enforcer, clock, machine):
    enforcer.update(schedule(EnforcementMode.PASSIVE, PowerActionKind.SLEEP, retry=30))
    machine.reading = Reading(idle_seconds=25 * 60, cpu_percent=1.2, sessions=1)
    enforcer.tick()
    clock.advance(29)
    enforcer.tick()  # still within retry_minutes: not even looked at
    clock.advance(1)
    machine.reading = IDLE  # signed out
    enforcer.tick()
    assert outcomes(enforcer.drain()) == [
        ("skipped", "skipped: user signed in; retry in 30 min (idle 25 min, cpu 1.2%)"),
        ("done", "sleep (passive): idle 25 min, cpu 1.2%"),
    ]
    assert machine.ran == [["systemctl", "suspend"]]


def test_warn_counts_down_lets_the_user_defer_twice_then_acts(enforcer, clock, machine, screens):
    enforcer.update(schedule(EnforcementMode.WARN, warning=WarningSettings(10, 10, 2)))
    machine.reading = Reading(idle_seconds=25 * 60, cpu_percent=1.2, sessions=1)
    enforcer.tick()
    assert screens.shown == [Notice(f"{T0.isoformat()}#0", "Caretaker",
                                    "This computer will shut down in 10 minutes (school power policy). Press "
                                    "Postpone, or keep working, to put it off by 10 minutes (2 postponement(s) left).",
                                    600, 10, 2)]
    clock.advance(4)
    screens.press("alice")  # the Postpone button
    machine.reading = Reading(idle_seconds=8 * 60, cpu_percent=1.2, sessions=1)  # away since before the warning
    enforcer.tick()
    clock.advance(4)
    machine.reading = Reading(idle_seconds=30, cpu_percent=5.0, sessions=1)  # back at the keyboard
    enforcer.tick()
    clock.advance(4)
    screens.press("alice")
    enforcer.tick()  # a third press cannot defer again, and the countdown has not ended
    assert machine.ran == []
    assert [notice.postponements_left for notice in screens.shown] == [2, 1, 0]
    assert screens.shown[-1].message.endswith("It cannot be put off again: save your work.")
    clock.advance(6)
    enforcer.tick()
    assert machine.ran == [["systemctl", "poweroff"]]
    assert outcomes(enforcer.drain()) == [
        ("warned", "warned the signed-in user (1 session(s)): shutdown in 10 min (idle 25 min, cpu 1.2%)"),
        ("deferred", "deferred by user (1 of 2: alice pressed Postpone): 10 more min"),
        ("deferred", "deferred by user (2 of 2: the machine was used during the countdown): 10 more min"),
        ("done", "shutdown (warn): warned; after 2 deferral(s), the most allowed"),
    ]


def test_a_press_on_an_earlier_warning_does_not_defer_the_next(enforcer, clock, machine, screens):
    enforcer.update(schedule(EnforcementMode.WARN, warning=WarningSettings(10, 10, 2)))
    machine.reading = Reading(idle_seconds=25 * 60, cpu_percent=1.2, sessions=1)
    enforcer.tick()
    screens.press()
    clock.advance(1)
    enforcer.tick()  # deferred: a new warning, #1
    clock.advance(11)
    machine.reading = Reading(idle_seconds=40 * 60, cpu_percent=1.2, sessions=1)
    enforcer.tick()
    assert [o for o, _ in outcomes(enforcer.drain())] == ["warned", "deferred", "done"]


def test_a_helper_that_stops_answering_during_the_countdown_keeps_the_machine_on(enforcer, clock, machine, screens):
    enforcer.update(schedule(EnforcementMode.WARN, warning=WarningSettings(10, 10, 2)))
    machine.reading = Reading(idle_seconds=25 * 60, cpu_percent=1.2, sessions=1)
    enforcer.tick()
    clock.advance(5)
    machine.reading = Reading(idle_seconds=None, cpu_percent=1.2, sessions=1, unanswered=("alice (tty7)",))
    enforcer.tick()
    clock.advance(10)
    enforcer.tick()  # within retry_minutes: not even looked at
    assert machine.ran == [] and screens.withdrawn == 1
    assert outcomes(enforcer.drain())[1:] == [
        ("skipped", "kept on: warning withdrawn: alice (tty7) signed in and no session helper answers; "
                    "retry in 30 min")]


@pytest.mark.parametrize("mode", [EnforcementMode.OBSERVE, EnforcementMode.PASSIVE, EnforcementMode.WARN,
                                  EnforcementMode.FORCE])
def test_without_a_helper_a_signed_in_users_idle_is_unknown_and_the_machine_stays_on(
        enforcer, clock, machine, screens, mode):
    enforcer.update(schedule(mode))
    machine.reading = Reading(idle_seconds=None, cpu_percent=1.2, sessions=1, unanswered=("alice (tty7)",))
    enforcer.tick()
    clock.advance(29)
    enforcer.tick()
    assert machine.ran == [] and screens.shown == []
    assert outcomes(enforcer.drain()) == [
        ("skipped", "kept on: idle unknown: alice (tty7) signed in and no session helper answers; retry in 30 min")]


def test_force_without_an_input_criterion_does_not_need_a_helper(tmp_path, clock, machine, screens):
    """Force acts whoever is signed in; when its idle rule does not ask about input, no helper is needed."""
    enforcer = Enforcer(tmp_path / "s.json", machine.probe, machine.execute, for_platform("linux"), clock,
                        warnings=screens)
    enforcer.update(replace(schedule(EnforcementMode.FORCE), idle=IdleCriteria(cpu_below_percent=10)))
    machine.reading = Reading(idle_seconds=None, cpu_percent=1.2, sessions=1, unanswered=("alice (tty7)",))
    enforcer.tick()
    assert machine.ran == [["systemctl", "poweroff"]]


def test_warn_acts_at_once_when_nobody_is_signed_in(enforcer, machine, screens):
    enforcer.update(schedule(EnforcementMode.WARN, PowerActionKind.HIBERNATE))
    enforcer.tick()
    assert machine.ran == [["systemctl", "hibernate"]] and screens.shown == []


def test_the_site_stagger_offset_delays_the_action_into_the_window(enforcer, clock, machine):
    enforcer.update(schedule(EnforcementMode.FORCE, offset=180))
    for _ in range(3):
        enforcer.tick()
        clock.advance(1)
    assert machine.ran == []
    enforcer.tick()  # 18:03, the offset's minute
    assert machine.ran == [["systemctl", "poweroff"]]


def test_a_stale_schedule_keeps_the_machine_on(enforcer, clock, machine):
    enforcer.update(schedule(EnforcementMode.FORCE, start=T0 - timedelta(days=3)))
    enforcer.tick()
    assert machine.ran == [] and enforcer.drain() == ()


def test_a_failed_command_is_reported_as_failed_with_its_exit_status(tmp_path, clock):
    machine = Machine(returncode=1)
    enforcer = Enforcer(tmp_path / "s.json", machine.probe, machine.execute, for_platform("linux"), clock)
    enforcer.update(schedule(EnforcementMode.FORCE))
    enforcer.tick()
    assert outcomes(enforcer.drain()) == [
        ("failed", "systemctl poweroff failed (exit 1): Access denied; idle 25 min, cpu 1.2%")]


def test_schedule_and_unreported_actions_survive_a_restart_in_a_private_file(tmp_path, clock, machine):
    path = tmp_path / "state" / "power-schedule.json"
    first = Enforcer(path, machine.probe, machine.execute, for_platform("linux"), clock)
    first.update(schedule(EnforcementMode.FORCE))
    first.tick()  # records "done" before running the shutdown, which ends the process
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Enforcer(path, machine.probe, machine.execute, for_platform("linux"), clock)
    assert again.schedule_version == "v-force"
    assert outcomes(again.drain()) == [("done", "shutdown (force): idle 25 min, cpu 1.2%")]
    assert Enforcer(path, machine.probe, machine.execute, for_platform("linux"), clock).drain() == ()


def test_a_damaged_state_file_is_ignored_not_fatal(tmp_path, clock, machine):
    path = tmp_path / "power-schedule.json"
    write_private(path, "{not json")
    enforcer = Enforcer(path, machine.probe, machine.execute, for_platform("linux"), clock)
    assert enforcer.schedule is None


def test_the_schedule_round_trips_the_wire_format():
    sent = schedule(EnforcementMode.WARN, warning=WarningSettings(5, 15, 1), offset=120)
    assert from_wire(AgentSchedule, to_wire(sent)) == sent


@pytest.mark.parametrize(("reading", "expected"), [
    (IDLE, (True, "idle 25 min, cpu 1.2%")),
    (Reading(idle_seconds=25 * 60, cpu_percent=35.0, sessions=0), (False, "idle 25 min, cpu 35.0%")),
    (Reading(idle_seconds=None, cpu_percent=1.0, sessions=0), (False, "idle unknown, cpu 1.0%")),
])
def test_idle_needs_every_criterion_and_an_unknown_one_fails_safe(reading, expected):
    assert judge_idle(IDLE_RULE, reading) == expected


def test_a_listed_process_or_a_signed_in_user_means_not_idle():
    rule = IdleCriteria(processes_absent=("obs64.exe",), no_signed_in_session=True)
    assert judge_idle(rule, Reading(None, None, 0, processes=("OBS64.EXE",))) == (
        False, "obs64.exe running, 0 signed in")
    assert judge_idle(rule, Reading(None, None, 0, processes=("explorer.exe",))) == (
        True, "none of obs64.exe, 0 signed in")


@pytest.mark.parametrize(("platform", "verb", "argv"), [
    ("linux", Verb.SHUTDOWN, ["systemctl", "poweroff"]),
    ("linux", Verb.SLEEP, ["systemctl", "suspend"]),
    ("linux", Verb.HIBERNATE, ["systemctl", "hibernate"]),
    ("win32", Verb.SHUTDOWN, ["shutdown", "/s", "/t", "60", "/c", "shutdown by school power policy", "/d", "p:0:0"]),
    ("win32", Verb.SLEEP, ["rundll32.exe", "powrprof.dll,SetSuspendState", "0,1,0"]),
    ("win32", Verb.HIBERNATE, ["shutdown", "/h"]),
    ("darwin", Verb.SHUTDOWN, ["shutdown", "-h", "now"]),
    ("darwin", Verb.SLEEP, ["pmset", "sleepnow"]),
    ("darwin", Verb.HIBERNATE, ["pmset", "sleepnow"]),
])
def test_power_command_lines_per_os(platform, verb, argv):
    assert for_platform(platform).power_command(verb, f"{verb} by school power policy") == argv


class ScheduleController:
    """The agent endpoints' contract for the runner: answers with a schedule unless the agent holds it."""

    def __init__(self, schedule: AgentSchedule) -> None:
        self.schedule = schedule
        self.held: list[str | None] = []
        self.reports: list[dict] = []

    def enroll(self, token, inventory):  # pragma: no cover - the runner here starts enrolled
        raise AssertionError("already enrolled")

    def send(self, credentials, reports, schedule_version=None) -> BatchAck:
        self.held.append(schedule_version)
        self.reports += [json.loads(text) for text in reports]
        seqs = tuple(r["seq"] for r in self.reports[-len(reports):])
        return BatchAck(accepted=seqs, schedule=None if schedule_version == self.schedule.version else self.schedule)


def test_the_runner_hands_schedules_to_the_enforcer_and_its_actions_to_the_next_report(tmp_path, clock, machine):
    from tests.agent.test_runner import CREDS, FakeSampler

    config = AgentConfig(controller="https://controller.school.example", state_dir=tmp_path / "state")
    controller = ScheduleController(schedule(EnforcementMode.FORCE))
    enforcer = Enforcer(config.power_state_file, machine.probe, machine.execute, for_platform("linux"), clock)
    with Spool(config.spool_file, config.spool_max_bytes, clock_ms=lambda: 0) as spool:
        runner = Runner(config, spool, FakeSampler(), controller, CREDS, enforcer=enforcer)
        runner.once()  # the first reply brings the schedule
        assert enforcer.schedule_version == "v-force"
        enforcer.tick()  # 18:00, idle: shuts down
        runner.once()
    assert controller.held == [None, "v-force"]
    assert controller.reports[0]["actions"] == []
    (action,) = controller.reports[1]["actions"]
    assert (action["outcome"], action["kind"], action["mode"]) == ("done", "shutdown", "force")
    assert machine.ran == [["systemctl", "poweroff"]]


def test_the_runner_reports_which_of_the_schedules_watched_processes_run_and_only_those(tmp_path, clock, machine):
    from tests.agent.test_runner import CREDS, FakeSampler

    mine = psutil.Process().name()
    config = AgentConfig(controller="https://controller.school.example", state_dir=tmp_path / "state")
    controller = ScheduleController(schedule(EnforcementMode.OBSERVE, idle=IdleCriteria(
        processes_absent=("caretaker-no-such-process", mine.upper()))))
    enforcer = Enforcer(config.power_state_file, machine.probe, machine.execute, for_platform("linux"), clock)
    with Spool(config.spool_file, config.spool_max_bytes, clock_ms=lambda: 0) as spool:
        runner = Runner(config, spool, FakeSampler(), controller, CREDS, enforcer=enforcer)
        runner.once()  # the first reply brings the schedule
        runner.once()
    first, second = (report["activity"] for report in controller.reports)
    assert (first["processes_watched"], first["processes_running"]) == ([], [])
    assert second["processes_watched"] == ["caretaker-no-such-process", mine.upper()]
    assert second["processes_running"] == [mine.upper()]  # as the policy spells it, whatever the case


# --- the person at the keyboard, through a real session desk and helpers on a real socket -------------

INPUT_RULE = IdleCriteria(minutes_without_input=20)  # no CPU criterion: this machine's load does not matter


@pytest.fixture
def bench(tmp_path, clock):
    bench = Bench(tmp_path, clock)
    yield bench
    bench.close()


@pytest.fixture
def at_desk(tmp_path, clock, machine, bench) -> Enforcer:
    """The enforcer as `caretaker-agent run` builds it, but for the commands it runs and the clocks."""
    enforcer = Enforcer(tmp_path / "power-schedule.json", live_probe(bench.desk), machine.execute,
                        for_platform("linux"), clock, warnings=bench.desk)
    enforcer.update(schedule(EnforcementMode.WARN, warning=WarningSettings(10, 10, 2), idle=INPUT_RULE))
    return enforcer


def test_a_user_typing_is_not_powered_down(at_desk, bench, machine):
    bench.sign_in()
    bench.helper().state(4.0)
    at_desk.tick()
    assert machine.ran == [] and at_desk.drain() == ()


def test_a_user_idle_for_30_minutes_is_warned_then_powered_down(at_desk, bench, clock, machine):
    bench.sign_in()
    helper = bench.helper()
    helper.state(30 * 60)
    at_desk.tick()
    warning = helper.read()
    assert (warning["type"], warning["seconds"], warning["postponements_left"]) == ("warning", 600, 2)
    assert warning["message"].startswith("This computer will shut down in 10 minutes")
    clock.advance(10)
    helper.state(40 * 60)
    at_desk.tick()
    assert machine.ran == [["systemctl", "poweroff"]]
    assert [o for o, _ in outcomes(at_desk.drain())] == ["warned", "done"]


def test_pressing_postpone_defers_within_the_policys_limits(at_desk, bench, clock, machine):
    bench.sign_in()
    helper = bench.helper()
    helper.state(30 * 60)
    for minute in range(3):
        at_desk.tick()
        helper.postpone(helper.read()["id"])
        clock.advance(1)
        helper.state(31 * 60 + minute * 60)
    at_desk.tick()  # the third press came after the last postponement was used
    assert machine.ran == []
    clock.advance(10)
    helper.state(43 * 60)
    at_desk.tick()
    assert machine.ran == [["systemctl", "poweroff"]]
    assert outcomes(at_desk.drain()) == [
        ("warned", "warned the signed-in user (1 session(s)): shutdown in 10 min (idle 30 min)"),
        ("deferred", f"deferred by user (1 of 2: {ME} pressed Postpone): 10 more min"),
        ("deferred", f"deferred by user (2 of 2: {ME} pressed Postpone): 10 more min"),
        ("done", "shutdown (warn): warned; after 2 deferral(s), the most allowed"),
    ]


def test_a_locked_screen_is_idle_from_the_moment_it_was_locked_whatever_nudges_the_mouse(
        at_desk, bench, clock, machine):
    bench.sign_in()
    helper = bench.helper()
    helper.state(10, locked=True)
    clock.advance(30)
    helper.state(50, locked=True)  # someone nudged the mouse at the lock screen 50 s ago
    at_desk.tick()
    assert bench.desk.view().locked
    clock.advance(10)
    helper.state(5, locked=True)  # and again: a locked screen cannot defer
    at_desk.tick()
    assert machine.ran == [["systemctl", "poweroff"]]
    assert outcomes(at_desk.drain())[0] == (
        "warned", "warned the signed-in user (1 session(s)): shutdown in 10 min (idle 30 min, screen locked)")


def test_at_the_sign_in_screen_the_systems_own_idle_measure_decides_without_a_warning(
        at_desk, bench, clock, machine):
    bench.system = SystemIdle(45 * 60, "logind")
    at_desk.tick()  # the agent has only just started: it has not seen the sign-in screen for 20 minutes
    assert machine.ran == []
    clock.advance(25)
    at_desk.tick()
    assert machine.ran == [["systemctl", "poweroff"]]
    (done,) = at_desk.drain()
    assert done.reason == "shutdown (warn): idle 25 min"
    assert bench.desk.view().source == "since sign-out"


def test_a_signed_in_user_without_a_helper_keeps_the_machine_on_and_says_why(at_desk, bench, clock, machine):
    bench.sign_in()
    bench.sign_in("alice", "pts/3", remote=True)
    bench.helper().state(45 * 60)  # the console user's helper does not speak for an SSH session, nor for alice
    at_desk.tick()
    assert machine.ran == []
    assert outcomes(at_desk.drain()) == [
        ("skipped", "kept on: idle unknown: alice (pts/3) signed in and no session helper answers; retry in 30 min")]
