"""`caretaker policy check` and `caretaker policy explain` as an operator runs them."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from controller.api.app import create_app
from controller.db import make_engine
from controller.settings import Settings
from tests.conftest import BIN, REPO
from tests.factories import batch_json, enroll_json, inventory, report

POLICIES = REPO / "policies"


def caretaker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "caretaker"), *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A register with one desktop at Hillside Primary, enrolled the way an agent does it."""
    data_dir = tmp_path_factory.mktemp("var")
    token = caretaker("token", "create", "--site", "Hillside Primary", "--data-dir", str(data_dir)).stdout.strip()
    engine = make_engine(f"sqlite:///{data_dir / 'caretaker.db'}")
    with TestClient(create_app(Settings(data_dir=data_dir), engine)) as client:
        answer = client.post("/api/v1/agent/enroll", json=enroll_json(token, inventory(hostname="HILL-R01-PC01")))
        assert answer.status_code == 201, answer.text
    engine.dispose()
    return data_dir


def explain(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return caretaker("policy", "explain", *args, "--policies", str(POLICIES), "--data-dir", str(data_dir))


def test_check_summarises_valid_files():
    result = caretaker("policy", "check", str(POLICIES))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "ok: 5 policy(ies) and 3 calendar(s) in 5 file(s)"
    assert any(line.endswith("policy 'hillside-primary' (site Hillside Primary): shutdown out of hours, mode observe; "
                             "1 never-power-down, 1 maintenance window(s)") for line in lines)
    assert any(line.startswith("note: ") and "Year 11 Parents' Evening" in line for line in lines)


def test_check_takes_a_calendar_file_too():
    result = caretaker("policy", "check", str(POLICIES / "calendars" / "example-la-2026-27.yaml"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "ok: 0 policy(ies) and 1 calendar(s) in 1 file(s)"


def test_check_prints_each_mistake_on_its_own_line_and_exits_2(tmp_path):
    broken = (POLICIES / "primary.yaml").read_text().replace('weekdays: "07:45-17:00"', 'monday: "25:00-17:00"')
    broken = broken.replace("mode: observe", "mode: aggresive")
    (tmp_path / "primary.yaml").write_text(broken)
    (tmp_path / "calendars").symlink_to(POLICIES / "calendars")
    result = caretaker("policy", "check", str(tmp_path / "primary.yaml"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{tmp_path}/primary.yaml:15:11: school_hours.monday: '25:00' is not a time (HH:MM)",
        f"{tmp_path}/primary.yaml:21:7: mode: 'aggresive' is not one of observe, passive, warn, force",
        "caretaker: error: 2 problem(s) in the policy files",
    ]
    assert result.stdout == ""


def test_explain_prints_the_decision_and_every_rule(data_dir):
    result = explain(data_dir, "HILL-R01-PC01", "--at", "2026-02-16 18:30")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Device    1  HILL-R01-PC01  (desktop, site Hillside Primary, room Room 01, tags -)"
    assert lines[1] == "At        Mon 2026-02-16 18:30 GMT (+0000)"
    assert lines[2] == "Decision  shutdown when idle, mode observe: the agent acts once the device is idle"
    assert any("Mon 2026-02-16 is half term (Spring term half term)" in line
               and line.endswith("calendars/example-la-2025-26.yaml:17]") for line in lines)


def test_explain_as_json_with_activity_tags_and_an_offset(data_dir):
    result = explain(data_dir, "1", "--at", "2026-06-10T17:30+00:00", "--idle-minutes", "45", "--cpu", "3",
                     "--sessions", "0", "--json")
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)
    assert (decision["at"], decision["policy"], decision["intent"], decision["outcome"], decision["idle"]) == (
        "2026-06-10T18:30:00+01:00", "hillside-primary", "power_down", "record_only", True)
    assert {"step": "idle", "text": "45 min without input, needs 20: yes",
            "source": f"{POLICIES}/primary.yaml:18"} in decision["rules"]
    server = json.loads(explain(data_dir, "1", "--at", "2026-06-10 18:30", "--tag", "server", "--json").stdout)
    assert (server["intent"], server["basis"]) == ("keep_on", "never_power_down")


@pytest.mark.parametrize(("args", "message"), [
    (("NOPE-PC", "--at", "2026-02-16 18:30"), "no device with id, hostname, serial or asset tag 'NOPE-PC'"),
    (("42", "--at", "2026-02-16 18:30"), "no device with id, hostname, serial or asset tag '42'"),
    (("1", "--at", "16/02/2026 18:30"), "'16/02/2026 18:30' is not a time: write YYYY-MM-DD HH:MM, e.g. "
                                        "2026-02-16 18:30"),
])
def test_explain_mistakes_are_one_line(data_dir, args, message):
    result = explain(data_dir, *args)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"caretaker: error: {message}"]


def test_explain_with_broken_policies_points_at_check(data_dir, tmp_path):
    (tmp_path / "bad.yaml").write_text("name: x\napplies_to: all\nmode: warn\n")
    result = caretaker("policy", "explain", "1", "--policies", str(tmp_path), "--data-dir", str(data_dir))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"caretaker: error: {tmp_path}/bad.yaml:1:1: missing required key 'school_hours': a policy that powers "
        f"devices down needs school_hours, idle and action (`caretaker policy check {tmp_path}` lists every problem)"]


@pytest.fixture(scope="module")
def northgate(data_dir: Path) -> Path:
    """Two Northgate PCs whose agents reported on the processes the secondary policy waits on."""
    token = caretaker("token", "create", "--site", "Northgate Academy", "--data-dir", str(data_dir)).stdout.strip()
    engine = make_engine(f"sqlite:///{data_dir / 'caretaker.db'}")
    with TestClient(create_app(Settings(data_dir=data_dir), engine)) as client:
        for n, (hostname, running) in enumerate((("NGA-MEDIA-PC04", ("blender.exe",)), ("NGA-E12-PC01", ()))):
            answer = client.post("/api/v1/agent/enroll", json=enroll_json(token, inventory(
                hostname=hostname, serial=f"NGA{n}", macs=(f"00:1a:2b:3c:4d:6{n}",), machine_id=f"nga{n}",
                uuid=None)))
            assert answer.status_code == 201, answer.text
            sent = report(1)
            sent = dataclasses.replace(sent, activity=dataclasses.replace(
                sent.activity, processes_watched=("obs64.exe", "blender.exe"), processes_running=running))
            posted = client.post("/api/v1/agent/reports", json=batch_json([sent]), headers={
                "Authorization": f"Bearer {answer.json()['agent_id']}:{answer.json()['secret']}"})
            assert posted.status_code == 200, posted.text
    engine.dispose()
    return data_dir


def test_explain_takes_the_processes_the_policy_waits_on_from_the_agents_latest_report(northgate):
    rendering = explain(northgate, "NGA-MEDIA-PC04", "--at", "2026-02-16 18:30", "--idle-minutes", "45", "--cpu", "2",
                        "--sessions", "0")
    quiet = explain(northgate, "NGA-E12-PC01", "--at", "2026-02-16 18:30", "--idle-minutes", "45", "--cpu", "2",
                    "--sessions", "0")
    assert rendering.returncode == 0 == quiet.returncode, rendering.stderr + quiet.stderr
    assert rendering.stdout.splitlines()[2].startswith(
        "Reported  obs64.exe, blender.exe: blender.exe running, as the agent reported at ")
    assert "Decision  shutdown when idle, mode warn: the device is in use; checked again later" in rendering.stdout
    assert "none of obs64.exe, blender.exe running (blender.exe is): no" in rendering.stdout
    assert "Decision  shutdown when idle, mode warn: acts now" in quiet.stdout
    stated = explain(northgate, "NGA-MEDIA-PC04", "--at", "2026-02-16 18:30", "--idle-minutes", "45", "--cpu", "2",
                     "--sessions", "0", "--process", "explorer.exe")
    assert "Reported" not in stated.stdout and "acts now" in stated.stdout  # what the operator says wins


def test_check_warns_of_exceptions_no_device_in_the_register_matches(data_dir):
    result = caretaker("policy", "check", str(POLICIES), "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning: ")]
    assert any(line.endswith("policies/primary.yaml:28: never_power_down (tag server) matches no device in the "
                             "register among the 1 policy 'hillside-primary' applies to: set rooms and tags with "
                             "`caretaker device set`, the register CSV or placement rules")
               for line in warnings), warnings
    assert result.stdout.splitlines()[-1].startswith("ok: ")
