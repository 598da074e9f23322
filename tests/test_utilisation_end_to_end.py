"""The real agent's reports become hours in use: the agent process on this machine, reporting every second
over verified HTTPS to a real controller, then `caretaker lifecycle utilisation` as a network manager runs it.

A process keeps one CPU busy meanwhile, so the agent's own rule (input within its threshold, or a busy
CPU) reports the machine active; the policy makes every day a school day, so the test means the same on
a Sunday. What is compared: the command's hours in use against the active time of the reports the
controller stored, and the memory share each report carried against what the machine has.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

import pytest
from sqlmodel import Session, select

from controller.db import make_engine
from controller.register.models import Report as ReportRow
from tests.conftest import fresh_database, start_controller
from tests.test_end_to_end import FAST, AgentProcess, token_for, wait_for
from tests.test_end_to_end import pki as pki

pytestmark = pytest.mark.slow
EVERY_DAY = "\n".join(f'  {day}: "00:00-23:59"' for day in
                      ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))
POLICY = f"""\
name: every-day
applies_to:
  sites: [Hillside Primary]
school_hours:
{EVERY_DAY}
idle:
  minutes_without_input: 20
action: shutdown
mode: observe
"""
ACTIVE_SECONDS = 25  # enough stored active time to show as hours to the hundredth (36 s)… or nearly


def _active_seconds(database_url: str) -> float:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            rows = session.exec(select(ReportRow.start, ReportRow.end, ReportRow.slept_seconds)
                                .where(ReportRow.state == "active")).all()
            return sum((end - start).total_seconds() - slept for start, end, slept in rows)
    finally:
        engine.dispose()


def _memory(database_url: str) -> list[float | None]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(ReportRow.memory_percent)).all())
    finally:
        engine.dispose()


def test_a_real_agents_reports_become_hours_in_use(pki, tmp_path, monkeypatch):
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "every-day.yaml").write_text(POLICY)
    monkeypatch.setenv("CARETAKER_POLICY_DIR", str(policies))
    with fresh_database("sqlite", tmp_path) as url:
        controller = start_controller(url, tmp_path, tls=(pki.cert, pki.key, pki.ca), env=FAST)
        burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        overlay = tmp_path / "overlay.json"
        overlay.write_text(json.dumps({"device_class": "desktop"}))
        agent = AgentProcess(controller.url, pki, tmp_path / "agent", token_for(controller))
        agent.args += ["--inventory-overlay", str(overlay)]
        try:
            agent.start()
            wait_for(lambda: _active_seconds(url) >= ACTIVE_SECONDS, seconds=90, what="active reports")
        finally:
            agent.stop()
            burner.kill()
            burner.wait()
        try:
            found = json.loads(controller.cli("lifecycle", "utilisation", "--weeks", "1", "--json").stdout)
        finally:
            controller.stop()
    (device,) = found["devices"]
    active = Decimal(str(_active_seconds(url))) / 3600
    assert active > 0
    # The buckets' seconds are the reports' active time, spread over hours: the same to the hundredth.
    assert abs(Decimal(device["in_use_hours"]) - active) <= Decimal("0.005")
    assert (device["school_weeks"], device["school_days"], device["device_class"]) == (1, 1, "desktop")
    assert abs(Decimal(device["hours_per_week"]) - active * 5) <= Decimal("0.005")  # one school day so far, × 5
    memory = _memory(url)
    assert memory and all(m is not None and 0 < m < 100 for m in memory), memory
