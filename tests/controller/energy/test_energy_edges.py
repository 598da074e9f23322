"""The CLI and the web API give the same hand-computed figures, and refuse bad input in one clear line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal as D

import httpx
import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from controller.cli import app
from tests.controller.energy.estate import MONDAY
from tests.controller.energy.test_accounting import END, fixture_estate

FROM, TO = MONDAY.isoformat(), END.isoformat()


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def caretaker(database_url: str, *args: str) -> Done:
    """The real CLI in-process (a subprocess costs seconds of start-up per call on a busy machine)."""
    result = CliRunner().invoke(app, [*args, "--database-url", database_url])
    return Done(result.exit_code, result.stdout, result.stderr)


def test_the_cli_summary_by_room_shows_the_hand_computed_figures(engine, database_url):
    with Session(engine) as session:
        fixture_estate(session)
    done = caretaker(database_url, "energy", "summary", "--site", "Oakfield Primary", "--from", FROM, "--to", TO,
                     "--by", "room", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["total"]["kwh"] == "0.235" and result["total"]["cost_gbp"] == "0.0352"
    assert [r["key"] for r in result["rows"]] == ["Oakfield Primary / ICT 1", "Oakfield Primary / Office"]
    # ICT 1: 115.75 + 16.5 = 132.25 Wh; Office: 102.61 Wh.
    assert [r["kwh"] for r in result["rows"]] == ["0.132", "0.103"]


def test_the_cli_refuses_an_unknown_site_and_a_backwards_period_in_one_line(engine, database_url):
    done = caretaker(database_url, "energy", "summary", "--site", "Nowhere", "--from", "2025-11-10", "--to",
                     "2025-11-11")
    assert done.returncode == 2 and done.stderr == "caretaker: error: no site called 'Nowhere'\n"
    done = caretaker(database_url, "energy", "summary", "--from", "2025-11-10", "--to", "2025-11-01")
    assert done.returncode == 2
    assert done.stderr.startswith("caretaker: error: the period ends (2025-11-01) before it starts")


def test_a_tariff_set_from_the_cli_prices_the_summary(engine, database_url):
    with Session(engine) as session:
        fixture_estate(session)
    done = caretaker(database_url, "energy", "tariff", "set", "--site", "Oakfield Primary", "--from", "2025-11-01",
                     "--band", "flat all 00:00-00:00 20")
    assert done.returncode == 0, done.stderr
    done = caretaker(database_url, "energy", "summary", "--from", FROM, "--to", TO, "--json")
    assert json.loads(done.stdout)["total"]["cost_gbp"] == "0.0470"  # 234.86 Wh × 20 p/kWh = 4.6972 p
    refused = caretaker(database_url, "energy", "tariff", "set", "--site", "Oakfield Primary", "--from",
                        "2025-11-01", "--band", "day weekdays 07:00-19:00 30")
    assert refused.returncode == 2 and refused.stderr == "caretaker: error: no band prices mon 00:00\n"


def test_catalogue_edits_round_trip_and_change_attributed_energy(engine, database_url, tmp_path):
    with Session(engine) as session:
        fixture_estate(session)
    edits = tmp_path / "ours.csv"
    edits.write_text("device_class,vendor,model,active_watts,idle_watts,sleep_watts,off_watts,source\n"
                     "laptop,,,25,15,3,0.5,measured with a plug meter in ICT 1\n")
    assert caretaker(database_url, "energy", "catalogue", "import", str(edits)).returncode == 0
    exported = caretaker(database_url, "energy", "catalogue", "export", "--format", "csv").stdout
    assert "laptop,,,25.0,15.0,3.0,0.5,measured with a plug meter in ICT 1,250.0,override" in exported
    done = caretaker(database_url, "energy", "summary", "--from", FROM, "--to", TO, "--by", "device", "--json")
    laptop = next(r for r in json.loads(done.stdout)["rows"] if r["key"].endswith("LT01"))
    assert laptop["kwh_by_method"]["attributed"] == "0.006"  # two silent hours asleep at 3 W now
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {device_class: desktop, active_watts: 10, idle_watts: 50, sleep_watts: 3, off_watts: 1,"
                   " source: guess}\n")
    refused = caretaker(database_url, "energy", "catalogue", "import", str(bad))
    assert refused.returncode == 2
    assert refused.stderr.startswith("caretaker: error: bad.yaml entry 1: watts must not fall from off to sleep")


@pytest.fixture
def api(controller, engine):
    with Session(engine) as session:
        fixture_estate(session)
    token = controller.cli("apitoken", "create", "finance", "--role", "bursar").stdout.strip().split()[-1]
    with httpx.Client(base_url=controller.url, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


@pytest.mark.slow
def test_the_api_summary_matches_the_hand_computed_estate_and_refuses_bad_input(api, controller):
    response = api.get("/api/v1/energy/summary", params={"site": "Oakfield Primary", "from": FROM, "to": TO,
                                                         "by": "device_class"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"]["kwh"] == "0.235" and body["total"]["kgco2e"] == "0.042"
    assert {r["key"]: r["kwh"] for r in body["rows"]} == {"desktop": "0.218", "laptop": "0.017"}
    assert body["total"]["carbon"][0]["factor_year"] == 2025
    assert api.get("/api/v1/energy/summary", params={"from": FROM, "to": TO, "by": "floor"}).status_code == 400
    assert api.get("/api/v1/energy/summary", params={"from": "yesterday", "to": TO}).status_code == 400
    assert httpx.get(f"{controller.url}/api/v1/energy/summary", params={"from": FROM, "to": TO}).status_code == 401
    controller.cli("token", "create", "--site", "Birchwood Academy")  # creates the site an auditor is granted
    auditor = controller.cli("apitoken", "create", "secr-audit", "--role", "auditor", "--site",
                             "Birchwood Academy").stdout.strip().split()[-1]
    as_auditor = {"Authorization": f"Bearer {auditor}"}
    refused = httpx.get(f"{controller.url}/api/v1/energy/summary", headers=as_auditor,
                        params={"site": "Oakfield Primary", "from": FROM, "to": TO})
    assert refused.status_code == 403
    granted = httpx.get(f"{controller.url}/api/v1/energy/summary", headers=as_auditor, params={"from": FROM, "to": TO})
    assert granted.status_code == 200 and granted.json()["total"]["kwh"] == "0.000"  # Oakfield is not theirs


def test_a_tariff_file_and_a_new_carbon_factor_take_effect_from_the_cli(engine, database_url, tmp_path):
    with Session(engine) as session:
        fixture_estate(session)
    tariff = tmp_path / "tariff.yaml"
    tariff.write_text("name: school 2025\nstanding_pence_per_day: 95\nbands:\n"
                      "  - {name: night, days: all, start: '00:30', end: '07:30', pence_per_kwh: 10}\n"
                      "  - {name: day, days: all, start: '00:00', end: '00:00', pence_per_kwh: 30}\n")
    done = caretaker(database_url, "energy", "tariff", "set", "--site", "Oakfield Primary", "--from", "2025-11-10",
                     "--file", str(tariff))
    assert done.returncode == 0, done.stderr
    shown = json.loads(caretaker(database_url, "energy", "tariff", "show", "--site", "Oakfield Primary",
                                 "--json").stdout)
    assert [(b["name"], b["band"], b["pence_per_kwh"]) for b in shown][-2:] == [
        ("school 2025", "night", "10"), ("school 2025", "day", "30")]
    assert caretaker(database_url, "energy", "carbon", "set", "2025", "0.2", "--td", "0.02", "--source",
                     "test: a corrected 2025 figure").returncode == 0
    summary = caretaker(database_url, "energy", "summary", "--from", FROM, "--to", TO, "--json")
    total = json.loads(summary.stdout)["total"]
    # Energy is spread evenly within an hour, so 00:00-01:00 (PC + monitor + laptop + office meter: 152 Wh)
    # is priced half at 30 p and half at 10 p, 20 p; 01:00-04:00 is all night, 10 p.
    hour_wh = [D("50") + 25 + 12 + 65, D("25") + D("12.5") + D("0.5") + D("0.15") + D("1.5") + D("10.01") + 25,
               D("1.3") + D("1.5") + D("1.3"), D("1.3") + D("1.5") + D("1.3")]
    pence = hour_wh[0] * 20 / 1000 + sum(hour_wh[1:]) * 10 / 1000
    assert sum(hour_wh) == D("234.86")
    assert total["cost_gbp"] == str((pence / 100).quantize(D("0.0001")))
    assert total["kgco2e"] == "0.047" and total["td_kgco2e"] == "0.005"  # 234.86 Wh × 0.2 and × 0.02
