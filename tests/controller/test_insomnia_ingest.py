"""Agents' insomnia readings and update states through the real agent API: stored once by device-hour and
in the audit log, a replay adding nothing, a hostile holder refused on its own."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from agent.protocol import HolderKind, Insomnia, SleepHolder, UpdateStatus
from controller.register.models import ActionRecord, AwakeHour
from tests.controller.test_agent_api import REPORTS, client, enrolled, stored  # noqa: F401 (client is a fixture)
from tests.factories import T0, batch_json, report

TEAMS = SleepHolder(HolderKind.SYSTEM, "Playing audio", "Teams.exe")
EDGE = SleepHolder(HolderKind.DISPLAY, "Video Wake Lock", "msedge.exe", 4120)


def test_holders_are_kept_by_device_hour_and_a_replay_adds_nothing(client, engine):  # noqa: F811
    auth = enrolled(client, engine)
    # 10 minutes across the top of an hour, a third of it asleep: 400 s awake, 200 s each side of the hour;
    # then 5 minutes with no sleep timer, which outranks any holder.
    first = replace(report(1, T0 + timedelta(minutes=55), seconds=600),
                    insomnia=Insomnia(holders=(TEAMS, EDGE, EDGE), sleep_timer_set=True),
                    updates=UpdateStatus(installing=True, reboot_pending=False, detail="TiWorker.exe running"))
    first = replace(first, activity=replace(first.activity, slept_seconds=200))
    second = replace(report(2, T0 + timedelta(hours=1, minutes=5), seconds=300),
                     insomnia=Insomnia(sleep_timer_set=False), updates=UpdateStatus(False, True, "RebootPending"))
    for _ in range(2):
        answer = client.post(REPORTS, json=batch_json([first, second]), headers=auth)
        assert answer.status_code == 200, answer.text
    rows = sorted((r.hour - T0, r.kind, r.process, round(r.seconds, 3)) for r in stored(engine, AwakeHour))
    assert rows == [(timedelta(0), "display", "msedge.exe", 200.0), (timedelta(0), "system", "Teams.exe", 200.0),
                    (timedelta(hours=1), "display", "msedge.exe", 200.0),
                    (timedelta(hours=1), "no_sleep_timer", "", 300.0),
                    (timedelta(hours=1), "system", "Teams.exe", 200.0)]
    updates = sorted((r.outcome, r.reason) for r in stored(engine, ActionRecord, ActionRecord.kind == "updates"))
    assert updates == [("installing", "TiWorker.exe running"), ("reboot_pending", "RebootPending")]
    restarted = replace(report(3, T0 + timedelta(hours=2)), updates=UpdateStatus(False, False))
    assert client.post(REPORTS, json=batch_json([restarted]), headers=auth).status_code == 200
    assert len(stored(engine, ActionRecord, ActionRecord.kind == "updates", ActionRecord.outcome == "idle")) == 1


def test_an_agent_starting_with_nothing_to_install_adds_no_audit_line(client, engine):  # noqa: F811
    auth = enrolled(client, engine)
    first = replace(report(1), updates=UpdateStatus(installing=False, reboot_pending=False))
    assert client.post(REPORTS, json=batch_json([first]), headers=auth).status_code == 200
    assert stored(engine, ActionRecord, ActionRecord.kind == "updates") == []


def test_a_holder_with_a_control_character_costs_only_its_own_report(client, engine):  # noqa: F811
    auth = enrolled(client, engine)
    body = batch_json([replace(report(1), insomnia=Insomnia(holders=(TEAMS,))),
                       report(2, T0 + timedelta(minutes=5))])
    body["reports"][0]["insomnia"]["holders"][0]["what"] = "Playing\x1b[2J audio"
    body["reports"][1]["insomnia"] = {"holders": [{"kind": "caffeine", "what": "x"}]}
    answer = client.post(REPORTS, json=body, headers=auth)
    assert answer.status_code == 200
    reasons = {r["seq"]: r["reason"] for r in answer.json()["rejected"]}
    assert "holder.what contains a control character" in reasons[1] and "insomnia.holders[0].kind" in reasons[2]
    assert stored(engine, AwakeHour) == []
