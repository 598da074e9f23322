"""The `caretaker` command as an operator uses it on the controller host."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from controller.api.app import create_app
from controller.db import make_engine
from controller.settings import Settings
from tests.conftest import BIN
from tests.factories import batch_json, enroll_json, inventory, report


def caretaker(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "caretaker"), *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


def test_a_token_is_printed_once_and_listed_only_by_its_prefix(data_dir):
    created = caretaker(data_dir, "token", "create", "--site", "Hillside Primary", "--days", "7", "--uses", "40")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("ctk_") and len(token) > 40
    listed = caretaker(data_dir, "token", "list", "--json")
    (row,) = json.loads(listed.stdout)
    assert (row["site"], row["state"], row["max_uses"]) == ("Hillside Primary", "active", 40)
    assert token not in listed.stdout and token.startswith(row["prefix"])


def test_a_revoked_token_shows_as_revoked(data_dir):
    caretaker(data_dir, "token", "create", "--site", "Hillside Primary")
    assert caretaker(data_dir, "token", "revoke", "1").returncode == 0
    (row,) = json.loads(caretaker(data_dir, "token", "list", "--json").stdout)
    assert row["state"] == "revoked"


@pytest.mark.parametrize(("args", "message"), [
    (("token", "revoke", "42"), "no enrollment token with id 42"),
    (("device", "show", "42"), "no device with id, hostname, serial or asset tag '42'"),
    (("device", "show", "NOPE-PC"), "no device with id, hostname, serial or asset tag 'NOPE-PC'"),
    (("device", "set", "NOPE-PC", "--tag", "signage"), "no device with id, hostname, serial or asset tag 'NOPE-PC'"),
    (("device", "set", "1"), "nothing to set: give --room, --clear-room, --tag or --untag"),
    (("token", "create", "--site", "Hillside Primary", "--days", "0"), "a token must be valid for at least one day"),
])
def test_mistakes_get_one_line_errors(data_dir, args, message):
    result = caretaker(data_dir, *args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"caretaker: error: {message}"]


def test_an_unreachable_database_is_a_one_line_error(tmp_path):
    result = subprocess.run([str(BIN / "caretaker"), "devices", "--database-url",
                             "postgresql://nobody@127.0.0.1:1/none"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("caretaker: error: cannot open the database") and "Traceback" not in result.stderr


def test_devices_and_device_show_describe_what_agents_reported(data_dir):
    token = caretaker(data_dir, "token", "create", "--site", "Northgate Academy").stdout.strip()
    engine = make_engine(f"sqlite:///{data_dir / 'caretaker.db'}")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with TestClient(create_app(Settings(data_dir=data_dir), engine)) as client:
        for n in (1, 2):
            inv = inventory(hostname=f"NGA-LIB-PC0{n}", serial=f"CZC000000{n}", macs=(f"00:1a:2b:00:00:0{n}",),
                            machine_id=f"m{n}", uuid=f"4c4c4544-0000-0000-0000-00000000000{n}")
            body = client.post("/api/v1/agent/enroll", json=enroll_json(token, inv)).json()
            auth = {"Authorization": f"Bearer {body['agent_id']}:{body['secret']}"}
            reports = batch_json([report(1, start=an_hour_ago, watts=40.0 * n)])
            client.post("/api/v1/agent/reports", json=reports, headers=auth)

    rows = json.loads(caretaker(data_dir, "devices", "--site", "Northgate Academy", "--json").stdout)
    assert [r["hostname"] for r in rows] == ["NGA-LIB-PC01", "NGA-LIB-PC02"]
    assert caretaker(data_dir, "devices", "--site", "Elsewhere", "--json").stdout.strip() == "[]"
    table = caretaker(data_dir, "devices").stdout
    assert "NGA-LIB-PC02" in table and "OptiPlex 7010" in table

    detail = json.loads(caretaker(data_dir, "device", "show", str(rows[1]["id"]), "--json").stdout)
    assert detail["macs"] == ["00:1a:2b:00:00:02"]
    assert len(detail["agents"]) == 1 and detail["agents"][0]["reports"] == 1
    (energy,) = detail["energy_last_24h"]
    assert (energy["state"], energy["method"]) == ("idle", "model")
    assert energy["kwh"] == pytest.approx(80.0 * 300 / 3.6e6, abs=1e-4)
    text = caretaker(data_dir, "device", "show", str(rows[1]["id"])).stdout
    assert "NGA-LIB-PC02" in text and "00:1a:2b:00:00:02" in text
