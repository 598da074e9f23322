"""The real agent process enforcing a schedule from the real controller process, over verified HTTPS.

The controller loads a policy that powers the site down (all but one minute a day) in force mode. The
agent receives the schedule with its first ingest reply, judges this machine idle by the policy's
criterion (a process that is not running, read from the real process list), and runs the shutdown
command line. Every command goes through ``--power-command-wrapper``: a real script that records its
argv and exits 0, so this is the only part replaced and the test machine stays on. The action comes
back with the next report and is in the audit log (`caretaker audit`) once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from controller import tls
from controller.db import make_engine
from controller.policy.walltime import zone
from controller.register.models import ActionRecord
from controller.timeutil import utcnow
from tests.conftest import BIN, ControllerProcess, start_controller

pytestmark = pytest.mark.slow

POLICY = """\
name: all-week-off
applies_to:
  sites: [Hillside Primary]
school_hours:  # one minute a day, twelve hours from now: it is out of hours for the whole test
  weekdays: "{hours}"
  saturday: "{hours}"
  sunday: "{hours}"
idle:  # a process no machine runs: idle by this rule whatever the load on the test machine
  processes_absent: [caretaker-e2e-no-such-process]
action: shutdown
mode: force
"""

RECORDER = """\
import json, sys
with open(sys.argv[1], "a", encoding="utf-8") as log:
    log.write(json.dumps(sys.argv[2:]) + "\\n")
"""


@pytest.fixture
def pki(tmp_path: Path) -> tuple[Path, Path, Path]:
    ca, ca_key = tls.create_ca(tmp_path, "Test school CA")
    cert, key = tls.issue_server_certificate(ca, ca_key, ["127.0.0.1", "localhost"], tmp_path)
    return cert, key, ca


@pytest.fixture
def controller(database_url: str, tmp_path: Path, pki) -> Iterator[ControllerProcess]:
    policies = tmp_path / "policies"
    policies.mkdir()
    later = (utcnow() + timedelta(hours=12)).astimezone(zone("Europe/London"))
    (policies / "all-week-off.yaml").write_text(POLICY.format(hours=f"{later:%H}:00-{later:%H}:01"))
    running = start_controller(database_url, tmp_path, tls=pki, env={
        "CARETAKER_REPORT_INTERVAL_SECONDS": "1", "CARETAKER_POLICY_DIR": str(policies)})
    yield running
    running.stop()


def wait_for(condition: Callable[[], object], seconds: float = 60.0, what: str = "condition") -> object:
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)
    return found


def test_the_agent_enforces_the_controllers_schedule_and_the_action_reaches_the_audit_log(controller, pki, tmp_path):
    since = utcnow() - timedelta(minutes=1)
    token = controller.cli("token", "create", "--site", "Hillside Primary").stdout.strip()
    recorder, ran = tmp_path / "recorder.py", tmp_path / "ran.jsonl"
    recorder.write_text(RECORDER)
    state = tmp_path / "agent-state"
    agent = subprocess.Popen(
        [str(BIN / "caretaker-agent"), "run", "--controller", controller.url, "--token", token, "--ca-file",
         str(pki[2]), "--state-dir", str(state), "--interval", "1", "--session-address", str(tmp_path / "session.sock"),
         "--power-command-wrapper", f"{sys.executable} {recorder} {ran}"],
        stdout=(tmp_path / "agent.log").open("ab"), stderr=subprocess.STDOUT)
    try:
        commands = wait_for(lambda: ran.exists() and [json.loads(line) for line in ran.read_text().splitlines()],
                            what="the shutdown command")
        assert commands[0] == ["systemctl", "poweroff"]
        schedule = json.loads((state / "power-schedule.json").read_text())["schedule"]
        assert schedule["policy"] == "all-week-off" and (state / "power-schedule.json").stat().st_mode & 0o077 == 0

        engine = make_engine(controller.database_url)
        try:
            wait_for(lambda: _stored_actions(engine), what="the action in the controller's database")
        finally:
            engine.dispose()
    finally:
        agent.terminate()
        agent.wait(timeout=15)
    out = controller.cli("audit", "--since", f"{since.astimezone():%Y-%m-%d %H:%M}", "--json").stdout
    (action, *later) = [line for line in json.loads(out) if line["entry"] == "action" and line["kind"] != "updates"]
    assert (action["kind"], action["outcome"], action["mode"]) == ("shutdown", "done", "force")
    assert action["reason"] == "shutdown (force): none of caretaker-e2e-no-such-process"
    assert action["actor"].startswith("agent:")
    assert action["details"]["until"] is not None and action["site"] == "Hillside Primary"
    # Retry minutes (30) keep it from acting again while the machine "failed" to go off.
    assert all(line["outcome"] == "done" for line in later) and len(later) == 0

    # The agent reported whether the process the policy waits on runs (it does not), so the controller's
    # replay and explanation predict the shutdown rather than leaving it to "the agent decides".
    policies = str(controller.log.parent / "policies")
    today = utcnow().astimezone(zone("Europe/London")).date()
    simulated = json.loads(controller.cli("policy", "simulate", "--from", f"{today}", "--to",
                                          f"{today + timedelta(days=1)}", "--policies", policies, "--json").stdout)
    assert simulated["actions"] == {"shutdown/force": 1}
    (device,) = json.loads(controller.cli("devices", "--json").stdout)
    explained = controller.cli("policy", "explain", str(device["id"]), "--policies", policies).stdout
    assert "Decision  shutdown when idle, mode force: acts now" in explained
    assert "none of caretaker-e2e-no-such-process running: yes" in explained


def _stored_actions(engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(ActionRecord)).all())
