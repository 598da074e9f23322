"""Rooms and tags from each of their four sources reach the schedules real agents write to disk.

One real controller per backend (HTTPS on loopback) with a policy for Hillside Primary that powers
devices down out of hours, never powers down `signage`, and keeps the exam hall on for an exam on next
Monday. Real agent processes, one per device (told apart by ``--inventory-overlay``), each tagged
`signage` a different way: by hand (`caretaker device set`), by the asset register CSV, by a placement
rule on its hostname, and by the agent's own labels file; one is left untagged. Every power command goes
through a recording wrapper, so nothing here can switch the test machine off.

Fixtures: the policy and placement files are written from policies/README.md; the inventories are
the agent's own collection with identity fields overlaid.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time as clock
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from controller import tls
from controller.db import make_engine
from controller.policy.store import PolicyStore
from controller.policy.walltime import instant, zone
from controller.power.models import WakeRequest
from controller.power.scheduled import ScheduledWakes
from controller.power.wake import WakeConfig
from controller.register.facts import RELAY_DUTY
from controller.register.models import Device
from controller.timeutil import utcnow
from tests.conftest import BACKENDS, BIN, ControllerProcess, fresh_database, start_controller

pytestmark = pytest.mark.slow
LONDON = zone("Europe/London")

POLICY = """\
name: hillside
applies_to:
  sites: [Hillside Primary]
school_hours:
  weekdays: "08:30-15:30"
wake_before_school: "07:30"
idle:
  minutes_without_input: 1440   # a day without input: never idle while the test runs
action: shutdown
mode: force
exceptions:
  never_power_down:
    - tags: [signage]
  exam_windows:
    - name: GCSE maths
      groups: [Hall]
      start: {monday}
      end: {monday}
"""
PLACEMENT = """\
placement:
  - name: Exam hall
    match: {hostnames: ["HALL-*"]}
    room: Hall
  - name: Reception screens
    match: {hostnames: ["RULE-*"]}
    tags: [signage]
"""
HOSTS = ("HAND-PC01", "REG-PC01", "RULE-PC01", "LABEL-PC01", "PLAIN-PC01", "HALL-PC01")
RECORDER = "import sys\nopen(sys.argv[1], 'a').write(' '.join(sys.argv[2:]) + '\\n')\n"


def next_monday(today: date) -> date:
    return today + timedelta(days=7 - today.weekday())


class Estate:
    def __init__(self, controller: ControllerProcess, workdir: Path, ca: Path, monday: date) -> None:
        self.controller, self.workdir, self.ca, self.monday = controller, workdir, ca, monday
        self.agents: dict[str, subprocess.Popen] = {}

    def start_agent(self, number: int, hostname: str, token: str) -> None:
        state = self.workdir / hostname
        state.mkdir()
        overlay = {"hostname": hostname, "machine_id": f"machine-{hostname}",
                   "smbios": {"vendor": "Dell Inc.", "model": "OptiPlex 7010", "serial": f"SN-{hostname}",
                              "uuid": f"uuid-{hostname}"},
                   "nics": [{"name": "eth0", "mac": f"02:00:00:00:00:{number:02x}", "ipv4": [f"10.12.0.{number}"],
                             "ipv4_prefixes": [24]}]}
        (state / "overlay.json").write_text(json.dumps(overlay))
        (self.workdir / "recorder.py").write_text(RECORDER)
        labels = []
        if hostname == "LABEL-PC01":
            (state / "labels.toml").write_text('tags = ["signage"]\n')
            labels = ["--labels-file", str(state / "labels.toml")]
        self.agents[hostname] = (subprocess.Popen(
            [str(BIN / "caretaker-agent"), "run", "--controller", self.controller.url, "--token", token,
             "--ca-file", str(self.ca), "--state-dir", str(state), "--interval", "1",
             "--session-address", str(state / "session.sock"),
             "--inventory-overlay", str(state / "overlay.json"), *labels,
             "--power-command-wrapper", f"{sys.executable} {self.workdir / 'recorder.py'} {state / 'ran.log'}"],
            stdout=(state / "agent.log").open("ab"), stderr=subprocess.STDOUT))

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """`caretaker` as the operator runs it on the controller's machine (its policy directory included)."""
        return subprocess.run([str(BIN / "caretaker"), *args, "--database-url", self.controller.database_url],
                              capture_output=True, text=True, check=True, timeout=60,
                              env={**os.environ, "CARETAKER_POLICY_DIR": str(self.workdir / "policies")})

    def schedule(self, hostname: str) -> dict | None:
        path = self.workdir / hostname / "power-schedule.json"
        return json.loads(path.read_text())["schedule"] if path.exists() else None

    def stop(self, keep: tuple[str, ...] = ()) -> None:
        """Stop the agents but ``keep`` (the schedules they wrote stay on disk, as on a real machine)."""
        stopping = [name for name in self.agents if name not in keep]
        for name in stopping:
            self.agents[name].terminate()
        for name in stopping:
            self.agents.pop(name).wait(timeout=15)


def wait_for(condition: Callable[[], object], what: str, seconds: float = 60.0) -> object:
    deadline = clock.monotonic() + seconds
    while not (found := condition()):
        assert clock.monotonic() < deadline, f"timed out waiting for {what}"
        clock.sleep(0.3)
    return found


@pytest.fixture(scope="module", params=BACKENDS)
def estate(request, tmp_path_factory) -> Iterator[Estate]:
    workdir = tmp_path_factory.mktemp(f"rooms-{request.param}")
    ca, ca_key = tls.create_ca(workdir, "Test school CA")
    cert, key = tls.issue_server_certificate(ca, ca_key, ["127.0.0.1", "localhost"], workdir)
    monday = next_monday(utcnow().astimezone(LONDON).date())
    policies = workdir / "policies"
    policies.mkdir()
    (policies / "hillside.yaml").write_text(POLICY.format(monday=monday))
    (policies / "placement.yaml").write_text(PLACEMENT)
    with fresh_database(request.param, workdir) as url:
        controller = start_controller(url, workdir, tls=(cert, key, ca), env={
            "CARETAKER_REPORT_INTERVAL_SECONDS": "1", "CARETAKER_POLICY_DIR": str(policies),
            "CARETAKER_SCHEDULE_HOURS": str(24 * 9)})
        running = Estate(controller, workdir, ca, monday)
        try:
            token = running.cli("token", "create", "--site", "Hillside Primary").stdout.strip()
            for number, hostname in enumerate(HOSTS, start=1):
                running.start_agent(number, hostname, token)
            for hostname in HOSTS:
                wait_for(lambda hostname=hostname: running.schedule(hostname), f"{hostname}'s first schedule")
            running.stop(keep=("HAND-PC01", "REG-PC01"))  # the two whose tags change while the test runs
            yield running
        finally:
            running.stop()
            controller.stop()


def power_downs(schedule: dict) -> list[dict]:
    return [w for w in schedule["windows"] if w["intent"] == "power_down"]


def kept_on_for_signage(schedule: dict) -> bool:
    """No power-down, every window kept on because of the signage tag; where the controller has since elected
    the device its subnet's wake-on-LAN relay (a machine never powered down is the best candidate), that duty
    is named instead for the hours it holds (`device show` then says where the tag came from)."""
    reasons = {w["reason"] for w in schedule["windows"]}
    return bool(reasons) and not power_downs(schedule) and all(
        r == "never_power_down: tag signage" or r.endswith(RELAY_DUTY) for r in reasons)


def window_at(schedule: dict, moment: datetime) -> dict:
    (window,) = [w for w in schedule["windows"]
                 if datetime.fromisoformat(w["start"]) <= moment < datetime.fromisoformat(w["end"])]
    return window


def test_an_untagged_device_is_powered_down_out_of_hours(estate):
    schedule = estate.schedule("PLAIN-PC01")
    assert power_downs(schedule) and all(w["reason"] == "out_of_hours" for w in power_downs(schedule))
    shown = estate.cli("device", "show", "PLAIN-PC01").stdout
    assert "Room:      none" in shown and "Tags:      none" in shown


def test_a_device_tagged_signage_by_hand_is_never_powered_down(estate):
    assert power_downs(estate.schedule("HAND-PC01"))
    answer = estate.cli("device", "set", "HAND-PC01", "--tag", "signage").stdout
    assert answer.strip().endswith("HAND-PC01: updated")
    schedule = wait_for(lambda: not power_downs(estate.schedule("HAND-PC01")) and estate.schedule("HAND-PC01"),
                        "the hand-tagged schedule")
    assert kept_on_for_signage(schedule), schedule["windows"]
    assert "Tags:      signage (hand)" in estate.cli("device", "show", "HAND-PC01").stdout


def test_a_device_tagged_signage_in_the_register_csv_is_never_powered_down(estate):
    exported = estate.cli("assets", "export", "-").stdout
    rows = list(csv.DictReader(io.StringIO(exported)))
    for row in rows:
        if row["hostname"] == "REG-PC01":
            row["tags"] = "signage"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (estate.workdir / "register.csv").write_text(out.getvalue())
    estate.cli("assets", "import", str(estate.workdir / "register.csv"))
    schedule = wait_for(lambda: not power_downs(estate.schedule("REG-PC01")) and estate.schedule("REG-PC01"),
                        "the register-tagged schedule")
    assert kept_on_for_signage(schedule), schedule["windows"]
    assert "Tags:      signage (register)" in estate.cli("device", "show", "REG-PC01").stdout


def test_a_device_tagged_signage_by_a_placement_rule_is_never_powered_down(estate):
    assert power_downs(estate.schedule("RULE-PC01")) == []
    shown = estate.cli("device", "show", "RULE-PC01").stdout
    assert "Tags:      signage (rule: Reception screens, " in shown


def test_a_device_tagged_signage_by_its_own_agent_is_never_powered_down(estate):
    assert power_downs(estate.schedule("LABEL-PC01")) == []
    assert "Tags:      signage (agent)" in estate.cli("device", "show", "LABEL-PC01").stdout
    listed = json.loads(estate.cli("devices", "--tag", "signage", "--json").stdout)
    assert {"LABEL-PC01", "RULE-PC01"} <= {d["hostname"] for d in listed}
    assert "PLAIN-PC01" not in {d["hostname"] for d in listed}


def test_a_hall_pc_placed_by_its_hostname_is_on_for_the_exam_and_woken_for_it_after_the_weekend(estate):
    schedule = estate.schedule("HALL-PC01")
    monday = estate.monday
    assert window_at(schedule, instant(monday, time(12), LONDON))["reason"] == "exam_window: GCSE maths"
    assert window_at(schedule, instant(monday, time(19), LONDON))["intent"] == "keep_on"
    sunday_evening = instant(monday - timedelta(days=1), time(20), LONDON)
    tuesday_evening = instant(monday + timedelta(days=1), time(20), LONDON)
    assert window_at(schedule, sunday_evening)["intent"] == "power_down"
    assert window_at(schedule, tuesday_evening)["intent"] == "power_down"
    assert "Room:      Hall (rule: Exam hall, " in estate.cli("device", "show", "HALL-PC01").stdout

    # The controller's scheduled-wake job, at 07:30 on the exam Monday, queues the Hall PC's wake.
    engine = make_engine(estate.controller.database_url)
    try:
        job = ScheduledWakes(PolicyStore(estate.workdir / "policies", engine), WakeConfig())
        with Session(engine) as session:
            result = job(session, instant(monday, time(7, 30), LONDON)
                         + timedelta(seconds=5))
            session.commit()
            hall = session.exec(select(Device).where(Device.hostname == "HALL-PC01")).one()
            wakes = session.exec(select(WakeRequest).where(WakeRequest.device_id == hall.id)).all()
    finally:
        engine.dispose()
    assert result["queued"] >= 1
    assert [w.reason for w in wakes] == ["scheduled: wake_before_school: wake at 07:30"]
