"""`caretaker lifecycle|assets` and /api/v1/lifecycle|assets against a real controller process."""

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from controller.db import session_scope
from controller.lifecycle import registercsv
from controller.register.models import Site
from controller.web.accounts import Role, create_token
from tests.conftest import BIN, start_controller

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "assets"


@pytest.fixture
def sites(engine):
    with session_scope(engine) as session:
        session.add_all([Site(name="Hill Primary"), Site(name="Vale Academy")])


@pytest.fixture
def running(sites, database_url, tmp_path):
    controller = start_controller(database_url, tmp_path)
    yield controller
    controller.stop()


def token(engine, role: Role, *sites: str) -> dict[str, str]:
    with session_scope(engine) as session:
        secret, _ = create_token(session, f"test-{role}", role, list(sites), None, "test")
    return {"Authorization": f"Bearer {secret}"}


class Cli:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "caretaker"), *args, "--database-url", self.database_url],
                              capture_output=True, text=True, check=check, timeout=120)


@pytest.mark.slow  # seven CLI processes, each starting Python and opening the database
def test_the_cli_imports_moves_and_explains_and_refuses_mistakes_in_one_line(sites, database_url):
    cli = Cli(database_url)
    imported = cli("assets", "import", str(FIXTURES / "register.csv"))
    assert imported.stdout.strip() == "4 created, 0 updated, 0 moved, 0 unchanged"

    bad = cli("assets", "import", str(FIXTURES / "bad.csv"), check=False)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("caretaker: error: ")
    assert "line 3: purchase_date '01/09/2022' is not a date" in bad.stderr

    moved = cli("lifecycle", "move", "HILL-0003", "deployed", "--reason", "Year 6 trolley")
    assert moved.stdout.strip() == "HILL-KS2-L02 (device 3): in_stock → deployed"
    refused = cli("lifecycle", "move", "HILL-0003", "disposed", "--reason", "broken", check=False)
    assert (refused.returncode, refused.stderr.strip()) == (2, (
        "caretaker: error: cannot move from deployed to disposed; from deployed a device may go to in_repair, "
        "in_stock, retired"))

    history = json.loads(cli("lifecycle", "history", "HILL-0003", "--json").stdout)
    assert [(h["from_state"], h["to_state"], h["actor"], h["reason"]) for h in history] == [
        (None, "in_stock", "cli", "CSV import register.csv, line 4"),
        ("in_stock", "deployed", "cli", "Year 6 trolley")]

    advice = json.loads(cli("lifecycle", "recommend", "--site", "Hill Primary", "--json").stdout)
    assert {(a["hostname"], a["kind"]) for a in advice} >= {("HILL-OFFICE-01", "warranty_ended"),
                                                             ("HILL-SRV-01", "warranty_ended")}


def test_the_api_lets_each_role_do_only_its_part(running, engine):
    manager, bursar = token(engine, Role.network_manager), token(engine, Role.bursar)
    auditor = token(engine, Role.auditor, "Vale Academy")
    api = f"{running.url}/api/v1"
    with httpx.Client(timeout=30) as http:
        register = (FIXTURES / "register.csv").read_bytes()
        assert http.post(f"{api}/assets/import", content=register, headers=bursar).status_code == 403
        done = http.post(f"{api}/assets/import", content=register, headers=manager)
        assert done.json() == {"created": 4, "updated": 0, "unchanged": 0, "moved": 0, "skipped": 0}
        bad = http.post(f"{api}/assets/import", content=(FIXTURES / "bad_rows.csv").read_bytes(), headers=manager)
        assert bad.status_code == 400 and "line 3: unknown site 'Nowhere Academy'" in bad.json()["detail"]

        exported = http.get(f"{api}/assets/export", headers=bursar)
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        with session_scope(engine) as session:
            assert exported.text == registercsv.export_csv(session)
        assert http.get(f"{api}/assets/export", headers=auditor).text.count("\n") == 1  # header only: not Vale's

        move = {"state": "retired", "reason": "cracked hinge"}
        assert http.post(f"{api}/lifecycle/devices/HILL-0002/moves", json=move, headers=bursar).status_code == 403
        ok = http.post(f"{api}/lifecycle/devices/HILL-0002/moves", json=move, headers=manager)
        assert ok.json() == {"device_id": 2, "hostname": "HILL-KS2-L01", "from_state": "deployed",
                             "to_state": "retired", "outcome": None}
        skip = http.post(f"{api}/lifecycle/devices/HILL-0002/moves", json={"state": "disposed", "reason": "x",
                                                                          "outcome": "recycled"}, headers=manager)
        assert skip.status_code == 409 and skip.json()["detail"].startswith("cannot move from retired to disposed")
        assert http.post(f"{api}/lifecycle/devices/NOPE/moves", json=move, headers=manager).status_code == 404

        batch = {"name": "pallet-1", "transfer_note_ref": "WTN-2026-114", "carrier": "Green Waste Ltd",
                 "recycler": "ReTech UK", "accreditation": "ADISA ADC 8.0", "collected_on": "2026-11-20"}
        created = http.post(f"{api}/lifecycle/batches", json=batch, headers=manager)
        assert created.status_code == 201 and created.json()["retain_until"] == "2028-11-20"
        added = http.post(f"{api}/lifecycle/batches/pallet-1/devices", json={"devices": ["HILL-0002"]},
                          headers=manager)
        assert added.json()["devices"] == [2]

        history = http.get(f"{api}/lifecycle/devices/HILL-0002/history", headers=bursar).json()
        assert [(h["from_state"], h["to_state"], h["actor"]) for h in history] == [
            (None, "deployed", "token:test-network_manager"), ("deployed", "retired", "token:test-network_manager")]
        assert http.get(f"{api}/lifecycle/devices/HILL-0002/history", headers=auditor).status_code == 404
        assert http.get(f"{api}/lifecycle/recommendations", headers=auditor).json() == []
        assert http.get(f"{api}/lifecycle/recommendations", headers=bursar).status_code == 200
        assert http.get(f"{api}/lifecycle/forecast", headers=bursar).status_code == 200
        assert http.get(f"{api}/lifecycle/recommendations").status_code == 401
