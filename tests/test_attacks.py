"""Attacks on a real controller process (`caretaker serve`, SQLite and PostgreSQL), as an attacker would try them
with a real agent's enrollment and reports as the starting body.

Each asserts the answer, what was stored (nothing, or the good reports only) and that the victim's device,
its history and its agent are exactly as they were.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from controller.db import make_engine
from controller.register.models import Agent, Device, DeviceMac, EnergyBucket
from controller.register.models import Report as ReportRow
from tests.conftest import BACKENDS, ControllerProcess, fresh_database, start_controller
from tests.factories import T0, batch_json, consecutive, enroll_json, inventory, report

ENROLL = "/api/v1/agent/enroll"
REPORTS = "/api/v1/agent/reports"
PASSWORD = "correct horse battery staple"
_machines = itertools.count(1)


def machine() -> dict:
    """A machine's identity, unique in the module: every test brings its own victim and attacker."""
    n = next(_machines)
    return {"hostname": f"HILL-R12-PC{n:03d}", "serial": f"CZC{n:07d}", "uuid": f"4c4c4544-0038-4d10-8052-{n:012x}",
            "macs": (f"00:1a:2b:3c:{n // 256:02x}:{n % 256:02x}", f"00:1a:2b:3d:{n // 256:02x}:{n % 256:02x}"),
            "machine_id": f"8f1c0c3a{n:08x}"}


@dataclass
class Running:
    """One controller per backend for the whole module (starting one costs seconds): two sites' tokens and
    a network manager (console user and API token)."""

    controller: ControllerProcess
    hillside: str
    northgate: str
    manager: dict[str, str]


@pytest.fixture(scope="module", params=BACKENDS)
def running(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    directory = tmp_path_factory.mktemp("attacks")
    with fresh_database(request.param, directory) as url:
        controller = start_controller(url, directory, env={"CARETAKER_METRICS_CACHE_SECONDS": "0"})
        try:
            hillside = controller.cli("token", "create", "--site", "Hillside Primary").stdout.strip()
            northgate = controller.cli("token", "create", "--site", "Northgate Academy").stdout.strip()
            (directory / "password").write_text(PASSWORD)
            controller.cli("user", "add", "nora", "--role", "network_manager", "--password-file",
                           str(directory / "password"))
            manager = controller.cli("apitoken", "create", "attack-tests", "--role", "network_manager").stdout.strip()
            yield Running(controller, hillside, northgate, {"Authorization": f"Bearer {manager}"})
        finally:
            controller.stop()


@dataclass
class Estate:
    """The running controller with a victim machine enrolled at Hillside and an hour of its reports stored."""

    controller: ControllerProcess
    http: httpx.Client
    hillside: str  # enrollment tokens
    northgate: str
    manager: dict[str, str]  # a network manager's API token header
    identity: dict  # the victim machine's
    victim: dict[str, str]  # the victim agent's Authorization header
    victim_device: int

    def cli(self, *args: str, check: bool = True) -> str:
        return self.controller.cli(*args, check=check).stdout

    def enroll(self, token: str, **identity) -> httpx.Response:
        return self.http.post(ENROLL, json=enroll_json(token, inventory(**identity)))

    def conflicts(self, *device_ids: int) -> list[dict]:
        listed = self.http.get("/api/v1/conflicts", headers=self.manager)
        assert listed.status_code == 200, listed.text
        return [c for c in listed.json() if c["id"] in device_ids]

    def snapshot(self) -> dict:
        """Everything an attack must leave alone about the victim: its device, MACs, history and agent."""
        engine = make_engine(self.controller.database_url)
        try:
            with Session(engine) as session:
                device = session.get(Device, self.victim_device)
                agents = session.exec(select(Agent).where(Agent.device_id == device.id)).all()
                return {
                    "device": {k: v for k, v in device.model_dump().items() if k != "last_seen"},
                    "macs": sorted(session.exec(select(DeviceMac.mac).where(DeviceMac.device_id == device.id))),
                    "reports": sorted(session.exec(select(ReportRow.seq).where(ReportRow.device_id == device.id))),
                    "joules": session.exec(select(func.sum(EnergyBucket.joules))
                                           .where(EnergyBucket.device_id == device.id)).one(),
                    "agents": [(a.id, a.retired_at, a.shared_since) for a in agents],
                }
        finally:
            engine.dispose()

    def victim_still_reports(self, seq: int) -> None:
        start = T0 + timedelta(hours=6, minutes=5 * seq)
        answer = self.http.post(REPORTS, json=batch_json([report(seq, start=start)]), headers=self.victim)
        assert answer.status_code == 200 and answer.json()["accepted"] == [seq], answer.text


def auth(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return {"Authorization": f"Bearer {body['agent_id']}:{body['secret']}"}


@pytest.fixture
def estate(running: Running) -> Iterator[Estate]:
    identity = machine()
    with httpx.Client(base_url=running.controller.url, timeout=30) as http:
        answer = http.post(ENROLL, json=enroll_json(running.hillside, inventory(**identity)))
        victim = auth(answer)
        assert http.post(REPORTS, json=batch_json(consecutive(1, 12, start=T0)), headers=victim).status_code == 200
        yield Estate(running.controller, http, running.hillside, running.northgate, running.manager, identity,
                     victim, answer.json()["device_id"])


# --- 1. cross-site takeover -----------------------------------------------------------------------------

@pytest.mark.parametrize("evidence", [
    pytest.param("uuid", id="SMBIOS UUID"),
    pytest.param("serial", id="serial"),
    pytest.param("macs", id="two MACs"),
])
def test_another_sites_token_cannot_take_over_a_device(estate: Estate, evidence: str) -> None:
    before = estate.snapshot()

    # Only the stolen evidence: the attacker leaves out whatever would contradict it.
    stolen = {**machine(), "serial": None, "uuid": None, "macs": (), evidence: estate.identity[evidence]}
    answer = estate.enroll(estate.northgate, **stolen)

    assert answer.status_code == 201
    attacker = answer.json()
    assert attacker["device_id"] != estate.victim_device and attacker["site"] == "Northgate Academy"
    assert estate.snapshot() == before, "the victim's device, history and agent are untouched"
    estate.victim_still_reports(100)
    (flagged,) = estate.conflicts(attacker["device_id"])
    assert (flagged["id"], flagged["kind"], flagged["conflict_with"]) == (attacker["device_id"], "elsewhere",
                                                                          estate.victim_device)
    assert "Hillside Primary" in flagged["conflict_reason"] and "nothing moved" in flagged["conflict_reason"]
    listed = json.loads(estate.cli("devices", "--conflicts", "--json"))  # the CLI lists the same
    assert [(c["kind"], c["conflict_with"], c["conflict_reason"]) for c in listed if c["id"] == attacker["device_id"]
            ] == [(flagged["kind"], flagged["conflict_with"], flagged["conflict_reason"])]

    # The network manager refuses it: the newcomer's credentials stop working, the victim carries on.
    assert "refused" in estate.cli("device", "resolve", str(attacker["device_id"]), "refuse")
    intruder = {"Authorization": f"Bearer {attacker['agent_id']}:{attacker['secret']}"}
    assert estate.http.post(REPORTS, json=batch_json([report(1)]), headers=intruder).status_code == 401
    estate.victim_still_reports(101)
    assert estate.conflicts(attacker["device_id"]) == []


def test_the_same_sites_token_still_recognises_a_reimaged_machine(estate: Estate) -> None:
    again = estate.enroll(estate.hillside, **{**estate.identity, "machine_id": "new-image-after-reimage"})

    assert again.json()["device_id"] == estate.victim_device
    assert estate.conflicts(estate.victim_device) == []


# --- 2. forged energy -----------------------------------------------------------------------------------

def test_forged_kilowatt_hours_are_rejected_report_by_report(estate: Estate) -> None:
    before = estate.snapshot()
    day = T0 - timedelta(days=1)
    forged = [report(200 + i, start=day, seconds=86_400, watts=100_000.0) for i in range(50)]
    honest = report(300, start=T0 + timedelta(hours=2), watts=60.0)

    answer = estate.http.post(REPORTS, json=batch_json([*forged, honest]), headers=estate.victim)

    assert answer.status_code == 200
    ack = answer.json()
    assert ack["accepted"] == [300]
    assert {r["seq"] for r in ack["rejected"]} == {r.seq for r in forged}
    assert all("above the 1,000 W a desktop can draw" in r["reason"] for r in ack["rejected"])
    after = estate.snapshot()
    assert after["reports"] == [*before["reports"], 300]
    assert after["joules"] == pytest.approx(before["joules"] + 60.0 * 300)


def test_a_report_overlapping_what_is_stored_is_rejected_and_its_neighbours_kept(estate: Estate) -> None:
    before = estate.snapshot()
    overlapping = report(400, start=T0 + timedelta(minutes=7), watts=900.0)  # over reports 2 and 3
    twice = [report(401 + i, start=T0 + timedelta(hours=3), watts=900.0) for i in range(3)]
    fresh = report(410, start=T0 + timedelta(hours=4))

    ack = estate.http.post(REPORTS, json=batch_json([overlapping, *twice, fresh]), headers=estate.victim).json()

    assert ack["accepted"] == [401, 410]
    reasons = {r["seq"]: r["reason"] for r in ack["rejected"]}
    assert set(reasons) == {400, 402, 403} and "overlaps report 2" in reasons[400]
    assert estate.snapshot()["joules"] == pytest.approx(before["joules"] + 900.0 * 300 + 45.0 * 300)


def test_the_ceiling_is_data_a_user_edits_through_the_catalogue(estate: Estate, tmp_path: Path) -> None:
    edits = tmp_path / "ceilings.yaml"
    edits.write_text("entries:\n- {device_class: desktop, active_watts: 80, idle_watts: 50, sleep_watts: 3,\n"
                     "   off_watts: 1, ceiling_watts: 2500, source: gaming PCs in the e-sports club}\n")
    estate.cli("energy", "catalogue", "import", str(edits))
    exported = estate.cli("energy", "catalogue", "export", "--format", "csv")
    assert "desktop,,,80.0,50.0,3.0,1.0,gaming PCs in the e-sports club,2500.0,override" in exported


# --- 4. malformed input never gets a 500 ----------------------------------------------------------------

def test_json_nested_a_thousand_deep_is_refused_before_parsing(estate: Estate) -> None:
    body = '{"protocol_version": 1, "token": "x", "inventory": ' + "[" * 1000 + "]" * 1000 + "}"
    answer = estate.http.post(ENROLL, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422 and "nested more than 32 deep" in answer.json()["detail"]
    answer = estate.http.post(REPORTS, content=body, headers={"Content-Type": "application/json", **estate.victim})
    assert answer.status_code == 422
    assert "Traceback" not in estate.controller.log.read_text()


def test_a_nul_in_a_hostname_is_refused_at_enrollment_and_costs_only_its_report_in_a_batch(estate: Estate) -> None:
    body = enroll_json(estate.hillside, inventory(**machine()))
    body["inventory"]["hostname"] = "EVIL\x00PC"
    answer = estate.http.post(ENROLL, json=body)
    assert answer.status_code == 422 and "control character" in answer.json()["detail"]
    before = estate.snapshot()

    batch = batch_json([report(500, start=T0 + timedelta(hours=5), with_inventory=inventory(**estate.identity)),
                        report(501, start=T0 + timedelta(hours=5, minutes=5))])
    batch["reports"][0]["inventory"]["hostname"] = "HILL\x00PC"
    ack = estate.http.post(REPORTS, json=batch, headers=estate.victim).json()

    assert ack["accepted"] == [501] and [r["seq"] for r in ack["rejected"]] == [500]
    assert estate.snapshot()["device"] == before["device"]


def test_numbers_past_the_database_integer_are_refused_not_a_server_error(estate: Estate) -> None:
    before = estate.snapshot()
    seq = batch_json([report(599, start=T0 + timedelta(hours=7))])
    seq["reports"][0]["seq"] = 2**63
    assert estate.http.post(REPORTS, json=seq, headers=estate.victim).status_code == 422
    wake = batch_json([report(600, start=T0 + timedelta(hours=7)), report(601, start=T0 + timedelta(hours=8))])
    wake["reports"][1]["relayed_wakes"] = [2**31]  # wake ids are INTEGER ids
    ack = estate.http.post(REPORTS, json=wake, headers=estate.victim).json()
    assert ack["accepted"] == [600] and [r["seq"] for r in ack["rejected"]] == [601]
    assert estate.snapshot()["reports"] == [*before["reports"], 600]


@pytest.mark.parametrize("bad_id", ["¹", "١٢", "99999999999999999999", "-1", "0", "+5", " 5", "5_000"])
def test_ids_are_ascii_digits_in_range_wherever_a_device_is_named(estate: Estate, bad_id: str) -> None:
    headers = estate.manager
    paths = [f"/api/v1/lifecycle/devices/{bad_id}/history", f"/api/v1/audit?since=2026-01-01T00:00:00%2B00:00"
             f"&device={bad_id}"]
    for path in paths:
        answer = estate.http.get(path, headers=headers)
        assert answer.status_code in (404, 422), (path, answer.status_code, answer.text)
    answer = estate.http.post(f"/api/v1/devices/{bad_id}/conflict", json={"resolution": "keep-apart"}, headers=headers)
    assert answer.status_code == 422, answer.text
    answer = estate.http.post("/api/v1/wake", json={"device": bad_id, "reason": "test"}, headers=headers)
    assert answer.status_code in (404, 422), answer.text
    assert "Traceback" not in estate.controller.log.read_text()


def test_control_characters_in_paths_queries_and_forms_are_refused(estate: Estate) -> None:
    assert estate.http.get("/api/v1/conflicts?site=Hill%00side", headers=estate.manager).status_code == 422
    assert estate.http.get("/api/v1/lifecycle/devices/HILL%00PC/history", headers=estate.manager).status_code == 422
    answer = estate.http.post("/signin", data={"name": "nora\x00", "password": PASSWORD})
    assert answer.status_code == 422
    answer = estate.http.post("/api/v1/assets/import", content="serial,hostname\nA\x00B,PC1\n",
                              headers={**estate.manager, "Content-Type": "text/csv"})
    assert answer.status_code == 422
    assert "Traceback" not in estate.controller.log.read_text()


# --- 3. sign-in that cannot be used against a user ------------------------------------------------------

def test_guessing_from_one_address_never_locks_the_account_out_elsewhere(estate: Estate) -> None:
    statuses = [estate.http.post("/signin", data={"name": "nora", "password": f"guess {i}"}).status_code
                for i in range(10)]
    assert statuses[:5] == [401] * 5 and 429 in statuses[5:], statuses
    assert estate.http.post("/signin", data={"name": "nora", "password": PASSWORD}).status_code == 429

    other_desk = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=estate.controller.url, transport=other_desk, follow_redirects=False) as nora:
        answer = nora.post("/signin", data={"name": "nora", "password": PASSWORD})
        assert answer.status_code == 303 and "caretaker_session" in answer.cookies

    metrics = estate.http.get("/metrics").text
    assert 'caretaker_signin_refused_total{reason="wrong"} 5.0' in metrics
    assert 'caretaker_signin_refused_total{reason="throttled"}' in metrics
    log = estate.controller.log.read_text()
    assert "sign-in from 127.0.0.1 refused: wrong name or password" in log
    assert "sign-in from 127.0.0.1 refused: too many failed sign-ins" in log


# --- 5. one credential, two machines --------------------------------------------------------------------

def test_a_credential_used_by_a_second_machine_is_flagged_and_cannot_rewrite_the_device(estate: Estate) -> None:
    before = estate.snapshot()
    start = T0 + timedelta(hours=10)
    stranger = machine()
    for i in range(40):  # the original and a copy on other hardware take turns
        identity = stranger if i % 2 else estate.identity
        body = batch_json([report(700 + i, start=start + timedelta(minutes=5 * i),
                                  with_inventory=inventory(**identity))])
        answer = estate.http.post(REPORTS, json=body, headers=estate.victim)
        assert answer.status_code == 200 and answer.json()["accepted"] == [700 + i]

    after = estate.snapshot()
    assert after["device"] == before["device"] and after["macs"] == before["macs"], "the device did not flip"
    assert after["reports"] == [*before["reports"], *range(700, 740)], "every report was stored"
    ((agent_id, retired, shared),) = after["agents"]
    assert retired is None and shared is not None
    (line,) = estate.conflicts(estate.victim_device)
    assert (line["kind"], line["agent_id"]) == ("shared", agent_id)
    assert f"SMBIOS UUID {stranger['uuid']}, not {estate.identity['uuid']}" in line["conflict_reason"]
    assert 'caretaker_conflicts{kind="shared"} 1.0' in estate.http.get("/metrics").text

    resolved = estate.http.post(f"/api/v1/devices/{estate.victim_device}/conflict", json={"resolution": "retire"},
                                headers=estate.manager)
    assert resolved.status_code == 200 and "retired" in resolved.json()["outcome"]
    answer = estate.http.post(REPORTS, json=batch_json([report(800, start=start + timedelta(hours=5))]),
                              headers=estate.victim)
    assert answer.status_code == 401
    again = estate.enroll(estate.hillside, **estate.identity)  # the real machine enrolls again and keeps its history
    assert again.json()["device_id"] == estate.victim_device


# --- 6. honest health -----------------------------------------------------------------------------------

def test_liveness_and_readiness_are_apart(estate: Estate) -> None:
    assert estate.http.get("/healthz").json() == {"status": "ok"}
    ready = estate.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["schema_revision"] == ready.json()["expected_revision"]
    assert estate.http.get("/docs").status_code == 404  # off unless the api_docs setting turns it on
