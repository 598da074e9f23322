"""Updates first, then power-down, and what keeps idle machines awake: the real agent and controller.

Two real agents on this machine, told apart by an inventory overlay, each reading the OS through its own
``--root``: a tree of links to the real /, except that /var/lib/dpkg/lock-frontend is a file of its own.
The test holds a real POSIX lock on each (as apt does while it installs), so each agent finds the lock in
the real /proc/locks and reports OS updates installing; apt on this machine is not touched.

- E2E-DEFER is out of hours under a force-mode policy: it puts its power-down off while the updates
  install (the audit says so, with the evidence), and shuts down once the lock is released.
- E2E-MAINT is in a maintenance window marked ``until_updates_done``: kept on while the updates install,
  then, once they are done, powered down at once rather than at the end of the window's hour.

Power commands go through ``--power-command-wrapper`` to a recorder: the exact command is asserted and the
machine stays on. Both agents report what holds them awake while idle; `caretaker energy insomnia` costs it.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from controller.cli import app
from controller.db import make_engine
from controller.policy.walltime import zone
from controller.register.models import ActionRecord
from controller.timeutil import utcnow
from tests.conftest import BIN, start_controller
from tests.test_enforcement_end_to_end import RECORDER, pki, wait_for  # noqa: F401 (pki is a fixture)

pytestmark = pytest.mark.slow

POLICY = """\
name: all-week-off
applies_to:
  sites: [Hillside Primary]
school_hours:  # one minute a day, twelve hours from now: it is out of hours for the whole test
  weekdays: "{hours}"
  saturday: "{hours}"
  sunday: "{hours}"
idle:
  processes_absent: [caretaker-e2e-no-such-process]
action: shutdown
mode: force
maintenance_windows:
  - {{name: Updates night, devices: [E2E-MAINT], weekdays: [{weekday}], start: "{start}", minutes: 60,
     until_updates_done: true}}
"""
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def linked_root(root: Path) -> Path:
    """A root whose every path leads to the real one, but for a dpkg lock file of its own."""
    for top in Path("/").iterdir():
        if top.name != "var":
            (root / top.name).symlink_to(top)
    for entry in Path("/var").iterdir():
        if entry.name != "lib":
            (root / "var" / entry.name).parent.mkdir(parents=True, exist_ok=True)
            (root / "var" / entry.name).symlink_to(entry)
    for entry in Path("/var/lib").iterdir():
        if entry.name != "dpkg":
            (root / "var/lib" / entry.name).parent.mkdir(parents=True, exist_ok=True)
            (root / "var/lib" / entry.name).symlink_to(entry)
    lock = root / "var/lib/dpkg/lock-frontend"
    lock.parent.mkdir(parents=True)
    lock.touch()
    return lock


@pytest.fixture
def controller(database_url: str, tmp_path: Path, pki) -> Iterator:  # noqa: F811
    policies = tmp_path / "policies"
    policies.mkdir()
    london = zone("Europe/London")
    later = (utcnow() + timedelta(hours=12)).astimezone(london)
    start = (utcnow() - timedelta(minutes=1)).astimezone(london)
    (policies / "all-week-off.yaml").write_text(POLICY.format(
        hours=f"{later:%H}:00-{later:%H}:01", weekday=WEEKDAYS[start.weekday()], start=f"{start:%H:%M}"))
    running = start_controller(database_url, tmp_path, tls=pki, env={
        "CARETAKER_REPORT_INTERVAL_SECONDS": "1", "CARETAKER_POLICY_DIR": str(policies)})
    yield running
    running.stop()


def start_agent(name: str, controller, token: str, ca: Path, work: Path) -> tuple[subprocess.Popen, Path]:
    state = work / name
    state.mkdir()
    root = state / "root"
    root.mkdir()
    lock = linked_root(root)
    (state / "overlay.json").write_text(json.dumps({
        "hostname": name, "machine_id": f"machine-{name}", "device_class": "desktop",
        "smbios": {"vendor": "Dell Inc.", "model": "OptiPlex 7010", "serial": f"SN-{name}", "uuid": f"uuid-{name}"},
        "nics": []}))  # on no subnet: never elected the wake relay that a subnet keeps awake
    agent = subprocess.Popen(
        [str(BIN / "caretaker-agent"), "run", "--controller", controller.url, "--token", token, "--ca-file", str(ca),
         "--state-dir", str(state), "--interval", "1", "--root", str(root), "--idle-threshold", "0",
         "--session-address", str(state / "session.sock"),
         "--busy-cpu-percent", "100", "--inventory-overlay", str(state / "overlay.json"),
         "--power-command-wrapper", f"{sys.executable} {work / 'recorder.py'} {state / 'ran.jsonl'}"],
        stdout=(state / "agent.log").open("ab"), stderr=subprocess.STDOUT)
    return agent, lock


def commands(state: Path) -> list:
    ran = state / "ran.jsonl"
    return [json.loads(line) for line in ran.read_text().splitlines()] if ran.exists() else []


def actions(engine, **where) -> list[ActionRecord]:
    with Session(engine) as session:
        query = select(ActionRecord)
        for key, value in where.items():
            query = query.where(getattr(ActionRecord, key) == value)
        return list(session.exec(query))


def test_power_downs_wait_for_installing_updates_and_a_maintenance_window_ends_once_they_are_in(
        controller, pki, tmp_path):  # noqa: F811
    token = controller.cli("token", "create", "--site", "Hillside Primary").stdout.strip()
    (tmp_path / "recorder.py").write_text(RECORDER)
    held = []
    agents = []
    engine = make_engine(controller.database_url)
    try:
        for name in ("E2E-DEFER", "E2E-MAINT"):
            agent, lock = start_agent(name, controller, token, pki[2], tmp_path)
            agents.append(agent)
            handle = lock.open("w")
            fcntl.lockf(handle, fcntl.LOCK_EX)  # what apt holds while it installs
            held.append(handle)
        wait_for(lambda: actions(engine, kind="shutdown", outcome="deferred"), what="the deferral for updates")
        wait_for(lambda: len(actions(engine, kind="updates", outcome="installing")) == 2, what="updates installing")
        assert commands(tmp_path / "E2E-DEFER") == [] and commands(tmp_path / "E2E-MAINT") == []
        for handle in held:
            handle.close()  # the install is over
        for name in ("E2E-DEFER", "E2E-MAINT"):
            ran = wait_for(lambda name=name: commands(tmp_path / name), what=f"{name}'s shutdown")
            assert ran == [["systemctl", "poweroff"]]
        wait_for(lambda: len(actions(engine, kind="shutdown", outcome="done")) == 2, what="both shutdowns reported")
        wait_for(lambda: len(actions(engine, kind="updates", outcome="idle")) == 2, what="updates done reported")
    finally:
        for agent in agents:
            agent.terminate()
            agent.wait(timeout=15)
        engine.dispose()

    def caretaker(*args: str) -> str:
        """The user's commands, in this process (a fresh `caretaker` takes seconds to start on a busy machine)."""
        result = CliRunner().invoke(app, [*args, "--database-url", controller.database_url])
        assert result.exit_code == 0, result.output
        return result.stdout

    today = utcnow().astimezone(zone("Europe/London")).date()
    audit = json.loads(caretaker("audit", "--since", f"{today - timedelta(days=1)}", "--json"))
    (deferred,) = [line for line in audit if line["outcome"] == "deferred"]
    assert deferred["hostname"] == "E2E-DEFER" and deferred["details"]["deferred_for"] == "updates_installing"
    assert deferred["reason"] == (f"deferred: OS updates installing (/var/lib/dpkg/lock-frontend held "
                                  f"(pid {os.getpid()})); none of caretaker-e2e-no-such-process")
    states = [(line["hostname"], line["outcome"]) for line in reversed(audit) if line["kind"] == "updates"]
    assert sorted(states) == [("E2E-DEFER", "idle"), ("E2E-DEFER", "installing"), ("E2E-MAINT", "idle"),
                              ("E2E-MAINT", "installing")]

    data_dir = ["--data-dir", str(tmp_path)]
    found = json.loads(caretaker("maintenance", "--since", f"{today - timedelta(days=1)}", "--until",
                                 f"{today + timedelta(days=1)}", "--json", *data_dir))
    (window,) = found["devices"]  # the window is E2E-MAINT's alone
    assert (window["hostname"], window["window"], window["updated"]) == ("E2E-MAINT", "Updates night", "installed")
    assert window["powered_down"].startswith("shutdown done at ") and window["woken"] == "not woken"
    assert window["deferred_for_updates"] == 0 and found["wake_failures"] == []
    text = caretaker("maintenance", "--since", f"{today - timedelta(days=1)}", "--until",
                     f"{today + timedelta(days=1)}", *data_dir)
    assert "E2E-MAINT" in text and "installed" in text

    # Both reported what held them while idle; only E2E-DEFER's hours are waste (E2E-MAINT's were kept on
    # for maintenance until it shut down), and its every wasted hour has a cause the agent saw.
    insomnia = json.loads(caretaker("energy", "insomnia", "--json", *data_dir))
    assert [d["device"] for d in insomnia["devices"]][:1] == ["Hillside Primary / E2E-DEFER"]
    assert insomnia["causes"] and all(c["kind"] != "not_reported" for c in insomnia["causes"])
    assert sum(float(c["kwh"]) for c in insomnia["causes"]) == pytest.approx(float(insomnia["kwh"]), abs=0.002)
