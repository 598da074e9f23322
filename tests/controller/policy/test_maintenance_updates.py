"""A maintenance window that ends once the OS updates are in: written in the policy file, carried to the agent."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.protocol import ScheduleIntent
from controller.policy.loader import load
from controller.policy.model import DeviceFacts
from controller.policy.plan import for_agent
from controller.policy.schedule import compile_schedule
from tests.controller.policy.test_loader import problems_in

POLICY = """\
name: hillside
applies_to: {sites: [Hillside Primary]}
school_hours: {weekdays: "08:00-16:00"}
idle: {minutes_without_input: 20}
action: shutdown
mode: force
maintenance_windows:
  - {name: Windows updates, weekdays: [wednesday], start: "02:00", minutes: 90, until_updates_done: true}
  - {name: Backups, weekdays: [wednesday], start: "04:00", minutes: 60}
"""


def test_until_updates_done_reaches_the_agents_schedule_for_that_window_only(tmp_path):
    (tmp_path / "hillside.yaml").write_text(POLICY)
    policies = load([tmp_path]).policies
    device = DeviceFacts(device_id="7", hostname="HS-PC01", site="Hillside Primary", device_class="desktop")
    schedule = compile_schedule(policies, {}, device, datetime(2025, 11, 11, 20, 0, tzinfo=UTC), days=2)
    windows = {w.reason: w for w in for_agent(schedule, "v1", 0).windows if w.intent is ScheduleIntent.KEEP_ON}
    assert windows["maintenance: Windows updates"].until_updates_done is True
    assert windows["maintenance: Backups"].until_updates_done is False
    updates = windows["maintenance: Windows updates"]
    assert (updates.start, updates.end) == (datetime(2025, 11, 12, 2, 0, tzinfo=UTC),
                                            datetime(2025, 11, 12, 3, 30, tzinfo=UTC))


def test_until_updates_done_must_be_true_or_false(tmp_path):
    (problem,) = problems_in(tmp_path, POLICY.replace("until_updates_done: true", "until_updates_done: soon"))
    assert problem == "policy.yaml:8:101: maintenance_windows[0].until_updates_done: 'soon' is not true or false"
