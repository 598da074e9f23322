"""`caretaker policy schedule` and `policy explain` agree with the schedules agents receive.

200 virtual agents (controller/simulate: the demo's estate, three sites) report to a real controller
running the example policies and placement rules from policies/ (copied in: three site policies, the
library laptops' and the servers'). Each agent keeps the schedule of its last ingest reply, as a real
agent writes power-schedule.json. For every device the schedule the CLI compiles is the same, and at
the middle of every window the explanation's decision says what the window says.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from agent.protocol import AgentSchedule, from_wire
from controller.db import make_engine
from controller.policy import explain
from controller.policy.dispatch import SchedulePlanner
from controller.policy.engine import decide
from controller.policy.store import PolicyStore
from controller.policy.walltime import instant, zone
from controller.register.models import Device
from controller.timeutil import utcnow
from tests.conftest import BIN, REPO, fresh_database, start_controller

pytestmark = pytest.mark.slow
DEVICES = 200
LONDON = zone("Europe/London")


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("agreement")
    policies = workdir / "policies"
    shutil.copytree(REPO / "policies", policies, ignore=shutil.ignore_patterns("README.md", "schema"))
    with fresh_database("sqlite", workdir) as url:
        controller = start_controller(url, workdir, env={"CARETAKER_POLICY_DIR": str(policies)})
        try:
            state = workdir / "simulate.json"
            # Half an hour of the latest weekday morning: a school day, when nearly every device reports.
            until = latest_weekday_morning(utcnow())
            run = subprocess.run([str(BIN / "caretaker"), "simulate", "--controller", controller.url, "--database-url",
                                  url, "--state", str(state), "--devices", str(DEVICES), "--sites", "3",
                                  "--history", f"{(utcnow() - until) / timedelta(days=1) + 0.02:.4f}",
                                  "--until", until.isoformat()],
                                 capture_output=True, text=True, timeout=300)
            assert run.returncode == 0, run.stdout + run.stderr
        finally:
            controller.stop()
        agents = json.loads(state.read_text())["agents"]
        yield url, policies, {a["device_id"]: from_wire(AgentSchedule, a["schedule"]) for a in agents.values()
                              if a["schedule"] is not None}  # a device off all that half hour sent nothing


def latest_weekday_morning(now: datetime) -> datetime:
    """10:30 London time on the latest weekday before today."""
    day = now.astimezone(LONDON).date() - timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return instant(day, time(10, 30), LONDON)


def caretaker(url: str, policies: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "caretaker"), *args, "--database-url", url], capture_output=True, text=True,
                          timeout=60, check=True, env={**os.environ, "CARETAKER_POLICY_DIR": str(policies)})


def test_every_agent_got_a_schedule_from_three_site_policies(estate):
    _, _, received = estate
    assert len(received) >= DEVICES * 0.85
    assert {s.policy for s in received.values()} >= {"hillside-primary", "northgate-academy", "riverside-college"}


def test_policy_schedule_compiles_what_each_agent_received(estate):
    url, policies, received = estate
    engine = make_engine(url)
    try:
        planner = SchedulePlanner(PolicyStore(policies, engine), engine)  # what `policy schedule` runs
        compared = 0
        for device_id, schedule in received.items():
            if schedule.version.endswith("-relay"):
                continue  # a subnet's elected wake relay is kept on by the controller's duty, not a policy
            again = planner.schedule_for(device_id, schedule.windows[0].start)
            assert (again.version, again.windows) == (schedule.version, schedule.windows), device_id
            compared += 1
    finally:
        engine.dispose()
    assert compared >= len(received) - 20


def test_policy_explain_decides_what_each_window_says(estate):
    url, policies, received = estate
    engine = make_engine(url)
    try:
        active = PolicyStore(policies, engine).current()
        with Session(engine) as session:
            for device_id, schedule in received.items():
                if schedule.version.endswith("-relay"):
                    continue
                facts = explain.facts_for(session, session.get(Device, device_id), active)
                for window in schedule.windows:
                    decision = decide(active.policies, active.calendars, facts,
                                      window.start + (window.end - window.start) / 2)
                    assert decision.intent.value == window.intent.value, (device_id, window)
                    assert window.reason == decision.basis.value + (f": {decision.label}" if decision.label else "")
    finally:
        engine.dispose()


def test_the_commands_show_the_same_windows_as_the_agents(estate):
    url, policies, received = estate
    by_policy = {}
    for device_id, schedule in sorted(received.items()):
        if not schedule.version.endswith("-relay"):
            by_policy.setdefault(schedule.policy, (device_id, schedule))
    for device_id, schedule in by_policy.values():
        day = schedule.windows[0].start.astimezone(LONDON).date()
        shown = json.loads(caretaker(url, policies, "policy", "schedule", str(device_id), "--from", f"{day}",
                                     "--days", "1", "--json").stdout)
        assert shown["schedule"]["version"] == schedule.version
        midnight = instant(day + timedelta(days=1), time(0), LONDON)
        assert [(datetime.fromisoformat(w["start"]), datetime.fromisoformat(w["end"]), w["intent"], w["reason"])
                for w in shown["windows"]] == [(w.start, w.end, w.intent.value, w.reason) for w in schedule.windows
                                               if w.start < midnight]
    # And `policy explain` as typed, for one of them (the in-process test above covers every window).
    device_id, schedule = next(iter(by_policy.values()))
    window = schedule.windows[len(schedule.windows) // 2]
    at = window.start + (window.end - window.start) / 2
    explained = caretaker(url, policies, "policy", "explain", str(device_id), "--at", at.isoformat()).stdout
    decided = next(line for line in explained.splitlines() if line.startswith("Decision  "))
    assert decided.startswith("Decision  keep on") == (window.intent.value == "keep_on"), (window, decided)
