"""Insomnia: the out-of-hours idle waste of each device put down to what held it awake, checked by hand.

Monday 10 November 2025 (GMT) at Oakfield Primary, no power policy (so the default school day), night rate
15 p/kWh from 19:00, carbon at 2025's 0.177 kg/kWh. Laptops, so every watt is the laptop's own.
"""

from __future__ import annotations

import csv
import json
import zipfile
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from controller.api.app import create_app
from controller.cli import app
from controller.db import session_scope
from controller.energy.insomnia import attribute, insomnia
from controller.register.models import AwakeHour
from controller.settings import Settings
from controller.storage.retention import drop_hours, drop_reports
from controller.web.accounts import Role, create_token
from tests.controller.energy.estate import HOUR, MONDAY, bucket, device, site

D = Decimal


def held(session: Session, of, hour, kind: str, seconds: float, what: str = "", process: str = "") -> None:
    session.add(AwakeHour(device_id=of.id, hour=hour, kind=kind, what=what, process=process, seconds=seconds))


@pytest.fixture
def estate(engine):
    with Session(engine) as session:
        oak = site(session)
        a = device(session, oak, "OAK-LIB-L01", "laptop", "Library")
        b = device(session, oak, "OAK-LIB-L02", "laptop", "Library")
        c = device(session, oak, "OAK-LIB-L03", "laptop", "Library")
        # A: 20 W idle at 20:00, held by Zoom's display request for 45 min and Teams' audio for 15;
        # 20 W at 21:00 with no sleep timer at all (its display request no longer matters).
        bucket(session, a, MONDAY + 20 * HOUR, "idle", "model", 20)
        held(session, a, MONDAY + 20 * HOUR, "display", 2700, "Zoom meeting in progress", "zoom.us")
        held(session, a, MONDAY + 20 * HOUR, "system", 900, "Playing audio", "Teams.exe")
        bucket(session, a, MONDAY + 21 * HOUR, "idle", "model", 20)
        held(session, a, MONDAY + 21 * HOUR, "no_sleep_timer", 3600, "the OS never sleeps on its own")
        held(session, a, MONDAY + 21 * HOUR, "display", 3600, "Zoom meeting in progress", "zoom.us")
        # B: 10 W idle at 20:00 from an agent that did not say; 10 W at 10:00 is school hours, not waste.
        bucket(session, b, MONDAY + 20 * HOUR, "idle", "model", 10)
        bucket(session, b, MONDAY + 10 * HOUR, "idle", "model", 10)
        # C: 30 W idle at 22:00; the agent looked and nothing held it.
        bucket(session, c, MONDAY + 22 * HOUR, "idle", "model", 30)
        held(session, c, MONDAY + 22 * HOUR, "nothing_held", 3600)
        session.commit()
    return engine


def test_each_wasted_device_hour_is_put_down_to_its_holders_and_the_causes_add_up_to_the_waste(estate):
    with Session(estate) as session:
        found = insomnia(session, MONDAY, MONDAY + 24 * HOUR, now=MONDAY + 48 * HOUR)
    rows = [(c.kind, c.what, c.process, c.devices, c.kwh, c.cost_gbp) for c in found.causes]
    assert rows == [
        ("nothing_held", "", "", 1, D("0.030"), D("0.0045")),  # 30 Wh at 15 p/kWh = 0.45 p
        ("no_sleep_timer", "the OS never sleeps on its own", "", 1, D("0.020"), D("0.0030")),
        ("display", "Zoom meeting in progress", "zoom.us", 1, D("0.015"), D("0.0023")),  # 3/4 of 20 Wh; 0.225 p
        ("not_reported", "", "", 1, D("0.010"), D("0.0015")),
        ("system", "Playing audio", "Teams.exe", 1, D("0.005"), D("0.0008")),  # 1/4 of 20 Wh; 0.075 p
    ]
    assert sum(c.kwh for c in found.causes) == found.kwh == D("0.080")  # school-hours 10 Wh is not waste
    assert found.cost_gbp == D("0.0120") and found.kgco2e == D("0.014")  # 80 Wh × 0.177 = 14.16 g
    assert [(d.device, d.kwh, d.idle_hours) for d in found.devices] == [
        ("Oakfield Primary / OAK-LIB-L01", D("0.040"), D("2.00")),
        ("Oakfield Primary / OAK-LIB-L03", D("0.030"), D("1.00")),
        ("Oakfield Primary / OAK-LIB-L02", D("0.010"), D("1.00"))]
    assert found.devices[0].causes == ["no_sleep_timer: the OS never sleeps on its own",
                                       "display: Zoom meeting in progress (zoom.us)",
                                       "system: Playing audio (Teams.exe)"]


@pytest.mark.parametrize(("seen", "expected"), [
    ({}, [(("not_reported", "", ""), D(1))]),
    ({("nothing_held", "", ""): 600.0}, [(("nothing_held", "", ""), D(1))]),
    ({("system", "backup", "borg"): 300.0, ("no_sleep_timer", "x", ""): 60.0}, [(("no_sleep_timer", "x", ""), D(1))]),
    ({("idle", "a", "p"): 300.0, ("system", "b", "q"): 900.0, ("nothing_held", "", ""): 600.0},
     [(("idle", "a", "p"), D("0.25")), (("system", "b", "q"), D("0.75"))]),
])
def test_the_one_rule_for_blame(seen, expected):
    assert attribute(seen) == expected


def test_the_cli_lists_causes_and_devices(estate, database_url, tmp_path):
    result = CliRunner().invoke(app, ["energy", "insomnia", "--from", "2025-11-10", "--to", "2025-11-10", "--json",
                                      "--database-url", database_url, "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert (found["kwh"], found["cost_gbp"]) == ("0.080", "0.0120")
    assert found["causes"][2]["process"] == "zoom.us" and found["causes"][2]["kwh"] == "0.015"
    text = CliRunner().invoke(app, ["energy", "insomnia", "--from", "2025-11-10", "--to", "2025-11-10",
                                    "--database-url", database_url, "--data-dir", str(tmp_path)])
    assert text.exit_code == 0, text.output
    assert "zoom.us" in text.stdout and "OAK-LIB-L01" in text.stdout


def test_the_bursar_report_lists_the_same_causes_and_figures(estate, database_url, tmp_path):
    out = tmp_path / "bursar.zip"
    result = CliRunner().invoke(app, ["report", "bursar", "--site", "Oakfield Primary", "--period",
                                      "2025-11-10..2025-11-10", "--format", "csv", "--out", str(out),
                                      "--database-url", database_url, "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(zipfile.ZipFile(out).read("insomnia.csv").decode("utf-8-sig").splitlines()))
    assert rows[0] == ["Cause", "Held by", "Program", "Devices", "Idle hours", "kWh", "£", "kgCO2e"]
    assert rows[1][:6] == ["nothing_held", "", "", "1", "1.0", "0.03"]
    assert rows[3][:3] == ["display", "Zoom meeting in progress", "zoom.us"] and rows[3][5] == "0.015"
    assert rows[-1][0] == "Total" and rows[-1][5] == "0.08"


def test_the_api_gives_the_same_figures_and_keeps_auditors_to_their_sites(estate, database_url, tmp_path):
    with session_scope(estate) as session:
        site(session, "Birchwood Academy")
        bursar = create_token(session, "finance", Role.bursar, [], None, "test")[0]
        auditor = create_token(session, "la", Role.auditor, ["Birchwood Academy"], None, "test")[0]
    app_ = create_app(Settings(database_url=database_url, data_dir=tmp_path), estate)
    params = {"from": "2025-11-10", "to": "2025-11-10"}
    with TestClient(app_) as api:
        answer = api.get("/api/v1/energy/insomnia", params=params, headers={"Authorization": f"Bearer {bursar}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["kwh"] == "0.080" and answer.json()["causes"][0]["kind"] == "nothing_held"
        refused = api.get("/api/v1/energy/insomnia", params={**params, "site": "Oakfield Primary"},
                          headers={"Authorization": f"Bearer {auditor}"})
        assert refused.status_code == 403
        own = api.get("/api/v1/energy/insomnia", params=params, headers={"Authorization": f"Bearer {auditor}"})
        assert own.status_code == 200 and own.json()["kwh"] == "0.000" and own.json()["causes"] == []


def test_what_held_devices_awake_outlives_the_reports_and_goes_with_the_hourly_buckets(estate):
    with Session(estate) as session:
        before = len(session.exec(select(AwakeHour)).all())
        drop_reports(session, (MONDAY + 48 * HOUR).date())  # report retention leaves it alone
        assert len(session.exec(select(AwakeHour)).all()) == before == 5
        drop_hours(session, (MONDAY + 21 * HOUR).date() + timedelta(days=1))  # the hours go, and it with them
        assert session.exec(select(AwakeHour)).all() == []
