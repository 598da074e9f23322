"""OS updates first, then power-down: the enforcer puts a power-down off while updates install (saying why,
once per window), and a maintenance window marked until_updates_done ends once the updates are in."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agent.enforcer import Enforcer
from agent.platform.power_actions import for_platform
from agent.protocol import (
    ActionOutcome,
    AgentSchedule,
    DeferralReason,
    EnforcementMode,
    PowerActionKind,
    ScheduleIntent,
    ScheduleWindow,
    UpdateStatus,
)
from tests.agent.sessions import T0, Clock
from tests.agent.test_enforcer import IDLE_RULE, Machine, schedule

INSTALLING = UpdateStatus(installing=True, reboot_pending=False, detail="unattended-upgr running (pid 812)")
DONE = UpdateStatus(installing=False, reboot_pending=True, detail="/run/reboot-required")


class Updates:
    def __init__(self, status: UpdateStatus | None = None) -> None:
        self.status = status

    def __call__(self) -> UpdateStatus | None:
        return self.status


@pytest.fixture
def parts(tmp_path):
    clock, machine, updates = Clock(), Machine(), Updates()
    return Enforcer(tmp_path / "s.json", machine.probe, machine.execute, for_platform("linux"), clock,
                    updates=updates), clock, machine, updates


@pytest.mark.parametrize("mode", [EnforcementMode.FORCE, EnforcementMode.PASSIVE, EnforcementMode.WARN])
def test_a_power_down_waits_for_installing_updates_and_says_why_once(parts, mode):
    enforcer, clock, machine, updates = parts
    updates.status = INSTALLING
    enforcer.update(schedule(mode))
    for _ in range(5):
        enforcer.tick()
        clock.advance(60)
    (deferred,) = enforcer.drain()
    assert (deferred.outcome, deferred.deferred_for) == (ActionOutcome.DEFERRED, DeferralReason.UPDATES_INSTALLING)
    assert deferred.reason == ("deferred: OS updates installing (unattended-upgr running (pid 812)); "
                               "idle 25 min, cpu 1.2%")
    assert machine.ran == []
    updates.status = DONE  # installed, waiting for a restart: the power-down finishes them
    enforcer.tick()
    assert machine.ran == [["systemctl", "poweroff"]]
    assert enforcer.drain()[-1].outcome is ActionOutcome.DONE


def test_observe_mode_records_what_it_would_do_whatever_the_updates(parts):
    enforcer, _clock, machine, updates = parts
    updates.status = INSTALLING
    enforcer.update(schedule(EnforcementMode.OBSERVE))
    enforcer.tick()
    (observed,) = enforcer.drain()
    assert observed.outcome is ActionOutcome.OBSERVED and machine.ran == []


def maintenance(start, until_updates_done: bool = True) -> AgentSchedule:
    return AgentSchedule(
        version="v-maint", timezone="Europe/London", valid_until=start + timedelta(hours=24), policy="hillside",
        windows=(ScheduleWindow(start, start + timedelta(minutes=90), ScheduleIntent.KEEP_ON,
                                reason="maintenance: Windows updates", until_updates_done=until_updates_done),
                 ScheduleWindow(start + timedelta(minutes=90), start + timedelta(hours=6), ScheduleIntent.POWER_DOWN,
                                PowerActionKind.SHUTDOWN, EnforcementMode.FORCE, "out_of_hours")),
        idle=IDLE_RULE)


def test_a_maintenance_window_ends_once_updates_have_installed_and_finished(parts):
    enforcer, clock, machine, updates = parts
    enforcer.update(maintenance(T0))
    updates.status = UpdateStatus(installing=False, reboot_pending=False)
    enforcer.tick()  # nothing installing yet: the window waits for updates to start (or its 90 minutes)
    clock.advance(10)
    updates.status = INSTALLING
    enforcer.tick()
    clock.advance(20)
    assert machine.ran == []
    updates.status = DONE
    enforcer.tick()  # seen installing, now finished: the power-down that follows, at once
    assert machine.ran == [["systemctl", "poweroff"]]
    (done,) = enforcer.drain()
    assert done.outcome is ActionOutcome.DONE and done.until == T0 + timedelta(hours=6)


def test_without_until_updates_done_the_window_keeps_the_machine_on_for_all_its_minutes(parts):
    enforcer, clock, machine, updates = parts
    enforcer.update(maintenance(T0, until_updates_done=False))
    updates.status = INSTALLING
    enforcer.tick()
    clock.advance(10)
    updates.status = DONE
    enforcer.tick()
    assert machine.ran == []
    clock.advance(90)
    enforcer.tick()
    assert machine.ran == [["systemctl", "poweroff"]]


def test_what_was_seen_installing_survives_a_restart(tmp_path):
    clock, machine, updates = Clock(), Machine(), Updates(INSTALLING)
    first = Enforcer(tmp_path / "s.json", machine.probe, machine.execute, for_platform("linux"), clock, updates=updates)
    first.update(maintenance(T0))
    first.tick()
    updates.status = DONE
    again = Enforcer(tmp_path / "s.json", machine.probe, machine.execute, for_platform("linux"), clock, updates=updates)
    again.tick()
    assert machine.ran == [["systemctl", "poweroff"]]
