"""`caretaker policy simulate|list|mode` and `caretaker audit` as an operator runs them, on a register
filled the way agents fill it (the real app's ingest, with a reported power action).

The commands run in-process through Typer's runner (the same `caretaker` app, arguments, environment,
output and exit status); the CLI's own process start-up is covered by tests/controller/test_cli.py."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from datetime import time, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from agent.protocol import ActionOutcome, EnforcementMode, PowerAction, PowerActionKind
from controller.api.app import create_app
from controller.cli import app
from controller.db import make_engine
from controller.policy.walltime import instant, zone
from controller.settings import Settings
from controller.timeutil import utcnow
from tests.conftest import REPO
from tests.factories import batch_json, enroll_json, inventory, report

LONDON = zone("Europe/London")


def last_sunday() -> object:
    day = (utcnow() - timedelta(days=1)).astimezone(LONDON).date()
    while day.weekday() != 6:
        day -= timedelta(days=1)
    return day


SUNDAY = last_sunday()
NOON = instant(SUNDAY, time(12, 0), LONDON)


@pytest.fixture(scope="module")
def estate(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A data dir with the primary policy, one desktop and an hour of idle Sunday reports, one carrying an action."""
    data_dir = tmp_path_factory.mktemp("var")
    policies = data_dir / "policies"
    policies.mkdir()
    shutil.copy(REPO / "policies" / "primary.yaml", policies)
    shutil.copytree(REPO / "policies" / "calendars", policies / "calendars")
    env = {**os.environ, "CARETAKER_POLICY_DIR": str(policies), "CARETAKER_DATA_DIR": str(data_dir)}
    token = caretaker(env, "token", "create", "--site", "Hillside Primary").stdout.strip()
    engine = make_engine(f"sqlite:///{data_dir / 'caretaker.db'}")
    with TestClient(create_app(Settings(data_dir=data_dir, policy_dir=policies), engine)) as client:
        enrolled = client.post("/api/v1/agent/enroll", json=enroll_json(token, inventory(hostname="HILL-R01-PC01")))
        auth = {"Authorization": f"Bearer {enrolled.json()['agent_id']}:{enrolled.json()['secret']}"}
        reports = [report(n + 1, NOON + timedelta(minutes=5 * n), watts=45.0) for n in range(12)]
        reports[0] = replace(reports[0], actions=(PowerAction(
            NOON + timedelta(minutes=4), PowerActionKind.SHUTDOWN, ActionOutcome.OBSERVED, EnforcementMode.OBSERVE,
            "would shutdown: idle 20 min, cpu 4.0%", instant(SUNDAY + timedelta(days=1), time(7, 30), LONDON),
            "hillside-primary"),))
        assert client.post("/api/v1/agent/reports", json=batch_json(reports), headers=auth).status_code == 200
    engine.dispose()
    return data_dir, env


def caretaker(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def test_simulate_reports_actions_and_the_kwh_observe_would_save(estate):
    _, env = estate
    result = caretaker(env, "policy", "simulate", "--from", f"{SUNDAY}", "--to", f"{SUNDAY + timedelta(days=1)}",
                       "--json", "--per-device")
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["actions"] == {"shutdown/observe": 1} and body["devices"] == 1 and body["observations"] == 12
    assert body["saved_kwh"] == 0.0
    # 11 reports after the first at 45 W, less the catalogue's off draw for a desktop.
    assert 11 * 300 * 43 / 3.6e6 < body["observe_kwh"] < 11 * 300 * 45 / 3.6e6
    assert body["per_device"][0]["device_id"] == "1"
    text = caretaker(env, "policy", "simulate", "--from", f"{SUNDAY}", "--to", f"{SUNDAY + timedelta(days=1)}")
    assert "shutdown  observe  1" in text.stdout and "kWh more if the observe-mode policies acted" in text.stdout


@pytest.mark.parametrize(("args", "message"), [
    (("--from", "2026-02-10", "--to", "2026-02-09"), "--to (2026-02-09) must be after --from (2026-02-10)"),
    (("--from", "10/02/2026", "--to", "2026-02-11"), "--from: '10/02/2026 00:00' is not a time"),
    (("--from", "2026-02-09", "--to", "2026-02-10", "--site", "Nowhere"), "no site called 'Nowhere'"),
])
def test_simulate_mistakes_are_one_line(estate, args, message):
    result = caretaker(estate[1], "policy", "simulate", *args)
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"caretaker: error: {message}")


def test_a_mode_switch_shows_in_the_list_and_the_audit_log(estate):
    _, env = estate
    switched = caretaker(env, "policy", "mode", "hillside-primary", "warn", "--actor", "cli:jo")
    assert switched.exit_code == 0, switched.stderr
    listed = json.loads(caretaker(env, "policy", "list", "--json").stdout)
    assert [(p["name"], p["mode"], p["file_mode"], p["switched"]) for p in listed] == [
        ("hillside-primary", "warn", "observe", True)]
    audit = json.loads(caretaker(env, "audit", "--since", f"{SUNDAY}", "--json").stdout)
    change = next(line for line in audit if line["kind"] == "set_mode")
    assert (change["actor"], change["reason"]) == ("cli:jo", "policy hillside-primary: mode observe → warn")
    assert caretaker(env, "policy", "mode", "hillside-primary", "loud").stderr == (
        "caretaker: error: 'loud' is not a mode: observe, passive, warn or force\n")
    assert caretaker(env, "policy", "mode", "hillside-primary", "observe", "--actor", "cli:jo").exit_code == 0


def test_audit_lists_the_agents_action_with_its_reason(estate):
    _, env = estate
    result = caretaker(env, "audit", "--device", "1", "--since", f"{SUNDAY}")
    assert result.exit_code == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if "action:shutdown" in line)
    assert "HILL-R01-PC01" in line and "observed" in line and "would shutdown: idle 20 min, cpu 4.0%" in line
    assert caretaker(env, "audit", "--device", "99", "--since", f"{SUNDAY}").stderr == (
        "caretaker: error: no device with id 99\n")
