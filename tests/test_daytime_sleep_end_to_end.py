"""Daytime sleep on the real agent from the real controller: laptops sleep during school hours after the
battery idle time when they run on battery, not after the mains one, and never if they are never-power-down.

Three real `caretaker-agent run` processes on this machine, told apart by their inventory overlays, each with
its own `--root` (the collectors' sysfs tree, the agent's test seam): one holds a discharging battery, the
others none (mains). The policy is school hours all day with `daytime_sleep` for laptops: 30 minutes idle on
mains, 1 on battery. Nobody is signed in, so input idle counts from the agent's start. Every power command
goes through `--power-command-wrapper`, a script that records its argv: the test machine stays on.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from controller import tls
from controller.timeutil import utcnow
from tests.conftest import BIN, ControllerProcess, start_controller
from tests.test_enforcement_end_to_end import RECORDER, wait_for

pytestmark = pytest.mark.slow

DAYS = "\n".join(f'  {day}: "00:00-24:00"' for day in (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))
POLICY = f"""\
name: laptops-by-day
applies_to:
  sites: [Hillside Primary]
school_hours:  # all day, every day: the whole test is in school hours
{DAYS}
idle:
  minutes_without_input: 45
action: shutdown
mode: force
daytime_sleep:
  device_classes: [laptop]
  mains_idle_minutes: 30
  battery_idle_minutes: 1
exceptions:
  never_power_down:
    - devices: [HILL-LT-SIGN]
"""
LAPTOPS = {"HILL-LT-BATT": True, "HILL-LT-MAINS": False, "HILL-LT-SIGN": True}  # name: on battery


@pytest.fixture
def pki(tmp_path: Path) -> tuple[Path, Path, Path]:
    ca, ca_key = tls.create_ca(tmp_path, "Test school CA")
    cert, key = tls.issue_server_certificate(ca, ca_key, ["127.0.0.1", "localhost"], tmp_path)
    return cert, key, ca


@pytest.fixture
def controller(tmp_path: Path, pki) -> Iterator[ControllerProcess]:
    """On SQLite only: nothing here depends on the database, and the agents' idle minute is most of the time."""
    database_url = f"sqlite:///{tmp_path / 'caretaker.db'}"
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "laptops.yaml").write_text(POLICY)
    running = start_controller(database_url, tmp_path, tls=pki, env={
        "CARETAKER_REPORT_INTERVAL_SECONDS": "1", "CARETAKER_POLICY_DIR": str(policies)})
    yield running
    running.stop()


def _root(where: Path, on_battery: bool) -> Path:
    """The sysfs the agent's collectors read: a discharging laptop battery, or no battery at all (mains)."""
    (where / "run").mkdir(parents=True)
    (where / "run" / "utmp").touch()  # nobody signed in
    if on_battery:
        battery = where / "sys" / "class" / "power_supply" / "BAT0"
        battery.mkdir(parents=True)
        for name, value in {"type": "Battery", "status": "Discharging", "power_now": "9500000",
                            "energy_full_design": "50000000", "energy_full": "45000000"}.items():
            (battery / name).write_text(value + "\n")
    return where


def test_laptops_sleep_after_the_battery_idle_time_during_school_hours(controller, pki, tmp_path):
    since = utcnow() - timedelta(minutes=1)
    token = controller.cli("token", "create", "--site", "Hillside Primary").stdout.strip()
    recorder = tmp_path / "recorder.py"
    recorder.write_text(RECORDER)
    agents = {}
    try:
        for name, on_battery in LAPTOPS.items():
            state = tmp_path / name
            state.mkdir()
            (state / "overlay.json").write_text(json.dumps({
                "hostname": name, "machine_id": f"machine-{name}", "device_class": "laptop",
                "smbios": {"vendor": "LENOVO", "model": "ThinkPad L14", "serial": f"SN-{name}",
                           "uuid": f"uuid-{name}"},
                # Wi-Fi without an address the controller could elect a wake-on-LAN relay on: a relay is
                # kept awake by that duty, and which laptop the election picks is not this test's subject.
                "nics": [{"name": "wlan0", "mac": f"02:00:00:00:00:0{len(agents) + 1}", "ipv4": [],
                          "ipv4_prefixes": []}]}))
            agents[name] = subprocess.Popen(
                [str(BIN / "caretaker-agent"), "run", "--controller", controller.url, "--token", token,
                 "--ca-file", str(pki[2]), "--state-dir", str(state), "--interval", "1",
                 "--root", str(_root(state / "root", on_battery)), "--session-address", str(state / "session.sock"),
                 "--inventory-overlay", str(state / "overlay.json"),
                 "--power-command-wrapper", f"{sys.executable} {recorder} {state / 'ran.jsonl'}"],
                stdout=(state / "agent.log").open("ab"), stderr=subprocess.STDOUT)
        started = time.monotonic()

        def ran(name: str) -> list[list[str]]:
            path = tmp_path / name / "ran.jsonl"
            return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

        # A minute of idle after the agent has enrolled and has its schedule; agents start slowly on a loaded machine.
        commands = wait_for(lambda: ran("HILL-LT-BATT"), seconds=180, what="the battery laptop's sleep command")
        assert commands == [["systemctl", "suspend"]]  # sleep, never poweroff, in school hours
        assert time.monotonic() - started >= 55  # after the battery's minute of idle, not before
        time.sleep(3)
        assert ran("HILL-LT-MAINS") == []  # on mains it waits 30 minutes
        assert ran("HILL-LT-SIGN") == []  # never powered down, even on battery
        schedule = json.loads((tmp_path / "HILL-LT-BATT" / "power-schedule.json").read_text())["schedule"]
        (window,) = [w for w in schedule["windows"] if w["daytime_sleep"]]
        assert window["daytime_sleep"] == {"mains_idle_minutes": 30, "battery_idle_minutes": 1}

        def audited() -> list[dict]:
            out = controller.cli("audit", "--since", f"{since.astimezone():%Y-%m-%d %H:%M}", "--json").stdout
            return [line for line in json.loads(out) if line["entry"] == "action"]

        (action,) = wait_for(audited, what="the sleep in the audit log")
    finally:
        for agent in agents.values():
            agent.terminate()
        for agent in agents.values():
            agent.wait(timeout=15)
    assert (action["kind"], action["outcome"], action["mode"]) == ("sleep", "done", "force")
    assert action["reason"].startswith("sleep (force): daytime sleep on battery after 1 min idle: idle 1 min")
    assert action["details"]["until"] is not None  # the end of school hours: savings claim asleep time up to it
    (device,) = [d for d in json.loads(controller.cli("devices", "--json").stdout) if d["id"] == action["device_id"]]
    assert device["hostname"] == "HILL-LT-BATT"
