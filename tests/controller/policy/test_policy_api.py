"""Policies through the real app (lifespan, ingest writer, SQLite and PostgreSQL): the schedule each agent
gets with its ingest reply, the actions it reports landing once in the audit log, and the console API."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import time, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agent.protocol import (
    ActionOutcome,
    AgentSchedule,
    BatchAck,
    EnforcementMode,
    PowerAction,
    PowerActionKind,
    from_wire,
)
from controller.api.app import create_app
from controller.db import session_scope
from controller.policy.walltime import instant, zone
from controller.register.enrollment import create_token
from controller.register.models import ActionRecord, Device
from controller.settings import Settings
from controller.timeutil import utcnow
from controller.web.accounts import Role
from controller.web.accounts import create_token as create_api_token
from tests.conftest import REPO
from tests.factories import T0, batch_json, enroll_json, inventory, report

REPORTS = "/api/v1/agent/reports"


@pytest.fixture
def client(engine: Engine, tmp_path) -> Iterator[TestClient]:
    policies = tmp_path / "policies"
    policies.mkdir()
    shutil.copy(REPO / "policies" / "primary.yaml", policies)
    shutil.copytree(REPO / "policies" / "calendars", policies / "calendars")
    settings = Settings(data_dir=tmp_path, policy_dir=policies, power_downs_per_minute=2)
    with TestClient(create_app(settings, engine)) as client:
        yield client


def enrol(client: TestClient, engine: Engine, hostname: str) -> dict[str, str]:
    with session_scope(engine) as session:
        token = create_token(session, "Hillside Primary", utcnow(), 30, "test").token
    answer = client.post("/api/v1/agent/enroll", json=enroll_json(token, inventory(
        hostname=hostname, serial=f"SN-{hostname}", machine_id=f"id-{hostname}", uuid=None,
        macs=(f"00:1a:2b:00:00:{len(hostname):02x}",))))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return {"Authorization": f"Bearer {body['agent_id']}:{body['secret']}"}


def post(client: TestClient, auth: dict, reports: list, held: str | None = None) -> BatchAck:
    body = batch_json(reports)
    if held is not None:
        body["schedule_version"] = held
    answer = client.post(REPORTS, json=body, headers=auth)
    assert answer.status_code == 200, answer.text
    return from_wire(BatchAck, answer.json())


def bearer(engine: Engine, role: Role, sites: tuple[str, ...] = ()) -> dict[str, str]:
    with session_scope(engine) as session:
        secret = create_api_token(session, f"t-{role}-{len(sites)}", role, list(sites), None, "test")[0]
    return {"Authorization": f"Bearer {secret}"}


def test_the_reply_carries_the_devices_schedule_once_until_it_changes(client, engine):
    auth = enrol(client, engine, "HILL-R01-PC01")
    first = post(client, auth, [report(1)])
    schedule = first.schedule
    assert isinstance(schedule, AgentSchedule) and schedule.policy == "hillside-primary"
    assert schedule.valid_until - utcnow() >= timedelta(hours=48)
    assert {w.mode for w in schedule.windows if w.mode} == {EnforcementMode.OBSERVE}
    assert post(client, auth, [report(2, T0 + timedelta(minutes=5))], held=schedule.version).schedule is None
    operator = bearer(engine, Role.network_manager)
    switched = client.put("/api/v1/policies/hillside-primary/mode", json={"mode": "warn"}, headers=operator)
    assert switched.status_code == 200 and switched.json()["switched"] is True
    changed = post(client, auth, [report(3, T0 + timedelta(minutes=10))], held=schedule.version).schedule
    assert changed is not None and changed.version != schedule.version
    assert {w.mode for w in changed.windows if w.mode} == {EnforcementMode.WARN}
    assert changed.warning.countdown_minutes == 10


def test_the_site_limit_staggers_devices_into_later_minutes(client, engine):
    offsets = []
    for n in range(5):
        auth = enrol(client, engine, f"HILL-R02-PC{n:02d}")
        offsets.append(post(client, auth, [report(1)]).schedule.start_offset_seconds)
    assert sorted(offsets) == [0, 0, 60, 60, 120]  # power_downs_per_minute=2


def test_reported_actions_land_once_in_the_audit_log_even_when_the_report_is_resent(client, engine):
    auth = enrol(client, engine, "HILL-R01-PC02")
    until = T0 + timedelta(hours=13)
    actions = (PowerAction(T0 + timedelta(minutes=1), PowerActionKind.SHUTDOWN, ActionOutcome.SKIPPED,
                           EnforcementMode.PASSIVE, "skipped: user signed in; retry in 30 min", until,
                           "hillside-primary"),
               PowerAction(T0 + timedelta(minutes=4), PowerActionKind.SHUTDOWN, ActionOutcome.DONE,
                           EnforcementMode.PASSIVE, "shutdown (passive): idle 22 min, cpu 1.2%", until))
    with_actions = replace(report(1), actions=actions)
    assert post(client, auth, [with_actions]).accepted == (1,)
    assert post(client, auth, [with_actions]).duplicate == (1,)  # a retry after a lost reply
    with Session(engine) as session:
        rows = session.exec(select(ActionRecord).order_by(ActionRecord.at)).all()
        device = session.exec(select(Device).where(Device.hostname == "HILL-R01-PC02")).one()
    assert [(r.outcome, r.mode, r.reason) for r in rows] == [
        ("skipped", "passive", "skipped: user signed in; retry in 30 min"),
        ("done", "passive", "shutdown (passive): idle 22 min, cpu 1.2%")]
    agent_id = auth["Authorization"].split()[1].split(":")[0]
    assert {r.actor for r in rows} == {f"agent:{agent_id}"} and {r.device_id for r in rows} == {device.id}
    assert rows[0].source_key == f"{agent_id}:1:0" and rows[0].details["until"] == until.isoformat()
    audit = client.get("/api/v1/audit", params={"since": (T0 - timedelta(hours=1)).isoformat(),
                                                "device": device.id},
                       headers=bearer(engine, Role.auditor, ("Hillside Primary",)))
    assert audit.status_code == 200, audit.text
    entries = [(line["entry"], line["outcome"]) for line in audit.json()]
    assert ("action", "done") in entries and ("action", "skipped") in entries
    unsited = client.get("/api/v1/audit", params={"since": (T0 - timedelta(hours=1)).isoformat()},
                         headers=bearer(engine, Role.auditor))
    assert [line for line in unsited.json() if line["entry"] == "action"] == []  # an auditor sees only their sites


def test_the_console_api_is_protected_by_role(client, engine):
    assert client.get("/api/v1/policies").status_code == 401
    assert client.get("/api/v1/audit", params={"since": T0.isoformat()}).status_code == 401
    bursar = bearer(engine, Role.bursar)
    assert client.get("/api/v1/policies", headers=bursar).json()[0]["name"] == "hillside-primary"
    assert client.put("/api/v1/policies/hillside-primary/mode", json={"mode": "force"},
                      headers=bursar).status_code == 403
    operator = bearer(engine, Role.network_manager)
    assert client.put("/api/v1/policies/nope/mode", json={"mode": "force"}, headers=operator).status_code == 404
    assert client.put("/api/v1/policies/hillside-primary/mode", json={"mode": "loud"},
                      headers=operator).status_code == 422
    naive = client.get("/api/v1/audit", params={"since": "2026-02-16T18:00:00"}, headers=bursar)
    assert naive.status_code == 422 and "UTC offset" in naive.text


def test_projected_impact_replays_the_last_week_with_and_without_the_switch(client, engine):
    auth = enrol(client, engine, "HILL-R01-PC03")
    sunday_noon = last_sunday_noon()
    post(client, auth, [report(n + 1, sunday_noon + timedelta(minutes=5 * n)) for n in range(12)])  # idle, 45 W
    answer = client.get("/api/v1/policies/hillside-primary/impact", params={"mode": "force", "days": 7},
                        headers=bearer(engine, Role.bursar))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["now"]["devices"] == body["after"]["devices"] == 1
    assert body["now"]["saved_kwh"] == 0.0  # observe acts on nothing
    assert body["after"]["saved_kwh"] == pytest.approx(body["now"]["observe_kwh"])
    # Would have shut down after the first idle report; the other 11 × 5 min at 45 W less the off draw are saved.
    assert 11 * 300 * 43 / 3.6e6 < body["after"]["saved_kwh"] <= 11 * 300 * 45 / 3.6e6
    assert body["after"]["actions"] == {"shutdown/force": 1} and body["now"]["actions"] == {"shutdown/observe": 1}


def last_sunday_noon():
    """A recent Sunday at noon in London: out of school hours whatever the calendar says."""
    london = zone("Europe/London")
    day = (utcnow() - timedelta(days=1)).astimezone(london).date()
    while day.weekday() != 6:
        day -= timedelta(days=1)
    return instant(day, time(12, 0), london)


def test_a_device_without_a_schedule_still_gets_its_reports_acknowledged(client, engine, caplog):
    planner = client.app.state.runtime.schedules
    assert asyncio.run(planner.reply(9999, None)) is None  # no such device: logged, never an error to the agent
    assert "no power schedule for device 9999" in caplog.text
