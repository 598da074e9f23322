"""The simulator's agents follow the schedules the controller sends them, like real agents.

A real `caretaker serve` loads a force-mode policy for the simulated site (school hours 08:00-16:30 on
weekdays, shut down after 20 minutes without input, servers never), and `caretaker simulate` builds a
week of history against it. The run is stopped halfway with SIGTERM and started again, as a person
would with Ctrl-C; then:

- every power-down is in the audit log once: no device has two at the same moment (a machine its user
  switched back on in the evening is powered down again once idle: that is a second power-down);
- no server was powered down, and nothing was powered down in school hours;
- for three sample devices, what `controller.energy.savings` claims is the counterfactual worked out by
  hand from the simulator's own model: for each shutdown at ``at`` with the window ending at ``until``,
  the machine stayed off until its user next sat down at it (``next_use``), so the saving is
  (idle + the monitor asleep − off − the monitor off) × (min(until, next use, end) − at) at the power
  catalogue's watts: desktop (50 + 0.3 − 1 − 0.3) = 49 W, laptop (15 − 0.5) = 14.5 W.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import Session, select

from controller.db import make_engine
from controller.energy.savings import savings_summary
from controller.policy.walltime import zone
from controller.register.models import ActionRecord, Device
from controller.simulate.enforce import next_use
from controller.simulate.estate import build_estate, plan_sites
from controller.timeutil import hour_floor, utcnow
from tests.conftest import BIN, start_controller

DEVICES = 16
POLICY = """\
name: northgate
applies_to:
  sites: [Northgate Academy]
school_hours:
  weekdays: "08:00-16:30"
idle:
  minutes_without_input: 20
action: shutdown
mode: force
exceptions:
  never_power_down:
    - device_classes: [server]
"""
SAVED_WATTS = {"desktop": Decimal("49"), "laptop": Decimal("14.5")}


def simulate(url: str, database_url: str, state: Path, stop_after: float | None = None) -> str:
    """Run the simulator; with ``stop_after``, send it SIGTERM that long into its backfill."""
    args = [str(BIN / "caretaker"), "simulate", "--controller", url, "--database-url", database_url,
            "--state", str(state), "--devices", str(DEVICES), "--sites", "1", "--history", "7", "--duration", "0"]
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = ""
    if stop_after is not None:
        for line in child.stdout:
            output += line
            if line.startswith("backfilling"):
                break
        time.sleep(stop_after)
        child.send_signal(signal.SIGTERM)
    rest, _ = child.communicate(timeout=120)
    output += rest
    assert child.returncode == 0, output
    return output


@pytest.fixture
def week(database_url: str, tmp_path: Path):
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "northgate.yaml").write_text(POLICY)
    controller = start_controller(database_url, tmp_path, env={"CARETAKER_POLICY_DIR": str(policies)})
    try:
        state = tmp_path / "simulate.json"
        first = simulate(controller.url, database_url, state, stop_after=2.0)
        rest = simulate(controller.url, database_url, state)
        assert "errors 0" in rest.splitlines()[-1], first + rest
    finally:
        controller.stop()
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def test_a_simulated_week_under_a_force_policy_records_each_power_down_once_and_saves_what_it_should(week):
    """One week simulated (the costly part), both promises checked on it."""
    each_power_down_once(week)
    savings_match_the_hand_counterfactual(week)


def each_power_down_once(week) -> None:
    with Session(week) as session:
        devices = {d.id: d for d in session.exec(select(Device)).all()}
        done = session.exec(select(ActionRecord).where(ActionRecord.outcome == "done")).all()
    assert len(done) > DEVICES  # most machines, most evenings
    assert all(a.kind == "shutdown" and a.mode == "force" for a in done)
    once = Counter((a.device_id, a.at) for a in done)
    assert max(once.values()) == 1, [k for k, n in once.items() if n > 1]
    assert not [a for a in done if devices[a.device_id].device_class == "server"]
    london = zone("Europe/London")
    for action in done:  # out of school hours, or on a weekend
        local = action.at.replace(tzinfo=UTC).astimezone(london) if action.at.tzinfo is None else action.at
        assert local.weekday() >= 5 or not (8 <= local.hour < 16 or (local.hour == 16 and local.minute < 30)), local


def savings_match_the_hand_counterfactual(week) -> None:
    end = hour_floor(utcnow()) - timedelta(hours=1)
    estate = {d.hostname: d for d in build_estate(plan_sites(DEVICES, 1), seed=1)}
    with Session(week) as session:
        devices = {d.id: d for d in session.exec(select(Device)).all()}
        done = session.exec(select(ActionRecord).where(ActionRecord.outcome == "done")).all()
        start = min(_utc(a.at) for a in done)
        summary = savings_summary(session, start, end, now=end)
    shut = Counter(a.device_id for a in done if devices[a.device_id].os_name == "Windows")
    samples = [device_id for device_id, _ in shut.most_common(3)]
    assert len(samples) == 3
    for device_id in samples:
        device = devices[device_id]
        behaviour = estate[device.hostname].behaviour
        expected = Decimal(0)
        mine = [a for a in done if a.device_id == device_id]
        for action in mine:
            at = _utc(action.at)
            until = datetime.fromisoformat(action.details["until"])
            back = next_use(behaviour, at) or end
            seconds = Decimal(int((min(until, back, end) - at).total_seconds())) if at < end else Decimal(0)
            expected += SAVED_WATTS[device.device_class] * seconds / 3600 / 1000
        claimed = sum((a.saved_kwh for a in summary.actions if a.device_id == device_id), Decimal(0))
        # Each claim is rounded to the Wh (half a Wh either way); a second power-down in one window is
        # claimed inside the first one's window, so the engine's split differs, never its total.
        assert abs(claimed - expected) <= Decimal("0.0005") * len(mine), (device.hostname, claimed, expected)
        assert expected > 0


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
