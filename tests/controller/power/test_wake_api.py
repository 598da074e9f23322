"""POST/GET /api/v1/wake through the real app: network managers queue waves, every reader lists them,
auditors see only their sites, and bad requests are clear 4xx with nothing written."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from controller.api.app import create_app
from controller.cli import app as cli
from controller.db import session_scope
from controller.power.models import WakeRequest
from controller.power.service import WakeService
from controller.settings import Settings
from controller.web.accounts import Role, create_token
from tests.controller.power import builders


@pytest.fixture
def client(engine, database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with Session(engine) as session:
        hill, dale = builders.site(session, "Hill"), builders.site(session, "Dale")
        for i in range(3):
            builders.device(session, hill, f"HILL-{i}", f"00:00:00:00:01:0{i}", room="ICT 2" if i else "Office")
        builders.device(session, dale, "DALE-0", "00:00:00:00:02:00")
        session.commit()
    # Nothing on these devices' subnet is reachable, so the dispatcher fails them rather than sending.
    settings = Settings(database_url=database_url, data_dir=tmp_path, wake_local_networks=["198.51.100.0/24"])
    with TestClient(create_app(settings, engine)) as test_client:
        yield test_client


def bearer(engine, role: Role, sites: list[str] | None = None) -> dict[str, str]:
    with session_scope(engine) as session:
        return {"Authorization": f"Bearer {create_token(session, f't-{role}', role, sites or [], None, 'test')[0]}"}


def wakes(engine) -> list[WakeRequest]:
    with Session(engine) as session:
        return list(session.exec(select(WakeRequest).order_by(WakeRequest.id)).all())


def test_a_network_manager_wakes_a_group_and_every_reader_can_list_it(client, engine):
    manager = bearer(engine, Role.network_manager)
    answer = client.post("/api/v1/wake", json={"site": "Hill", "group": "ICT 2", "reason": "exam prep"},
                         headers=manager)
    assert answer.status_code == 202, answer.text
    assert sorted(q["hostname"] for q in answer.json()["queued"]) == ["HILL-1", "HILL-2"]
    assert [w.requested_by for w in wakes(engine)] == ["token:t-network_manager"] * 2
    listed = client.get("/api/v1/wake", headers=bearer(engine, Role.bursar))
    assert listed.status_code == 200 and {w["hostname"] for w in listed.json()} == {"HILL-1", "HILL-2"}


def test_a_waves_own_wakes_say_what_happened_to_them(client, engine):
    manager = bearer(engine, Role.network_manager)
    first = client.post("/api/v1/wake", json={"device": "HILL-1"}, headers=manager).json()["queued"][0]["wake_id"]
    client.post("/api/v1/wake", json={"device": "HILL-2"}, headers=manager)

    def outcome() -> list[str]:
        return [w["outcome"] for w in client.get(f"/api/v1/wake?wake={first}", headers=manager).json()]

    deadline = time.monotonic() + 10
    while outcome()[0].startswith("queued") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert outcome() == ["failed: no relay agent on 10.20.0.0/24 is awake and reporting, and directed broadcast is "
                         "not allowed there"]


def test_only_a_network_manager_may_wake(client, engine):
    for role in (Role.bursar, Role.auditor):
        assert client.post("/api/v1/wake", json={"device": "HILL-0"}, headers=bearer(engine, role)).status_code == 403
    assert client.post("/api/v1/wake", json={"device": "HILL-0"}).status_code == 401
    assert client.get("/api/v1/wake").status_code == 401
    assert wakes(engine) == []


def test_bad_requests_are_clear_and_write_nothing(client, engine):
    manager = bearer(engine, Role.network_manager)
    unknown = client.post("/api/v1/wake", json={"device": "NOPE"}, headers=manager)
    assert (unknown.status_code, unknown.json()["detail"]) == (
        404, "no device with id, hostname, serial or asset tag 'NOPE'")
    both = client.post("/api/v1/wake", json={"device": "HILL-0", "site": "Hill"}, headers=manager)
    assert both.status_code == 422
    assert client.post("/api/v1/wake", json={}, headers=manager).status_code == 404
    assert client.get("/api/v1/wake?status=asleep", headers=manager).status_code == 422
    assert wakes(engine) == []


def test_an_auditor_sees_only_the_wakes_and_failures_of_their_sites(client, engine):
    manager = bearer(engine, Role.network_manager)
    assert client.post("/api/v1/wake", json={"site": "Hill"}, headers=manager).status_code == 202
    assert client.post("/api/v1/wake", json={"site": "Dale"}, headers=manager).status_code == 202
    auditor = bearer(engine, Role.auditor, ["Dale"])
    assert {w["site"] for w in client.get("/api/v1/wake", headers=auditor).json()} == {"Dale"}
    failures = client.get("/api/v1/wake/failures", headers=auditor)
    assert failures.status_code == 200 and {f["site"] for f in failures.json()} <= {"Dale"}


def test_cli_wakes_a_device_lists_it_and_refuses_an_unknown_one(engine, database_url):
    """No controller runs here, so the wake stays queued (and says so) and blocks a second one."""
    with Session(engine) as session:
        builders.device(session, builders.site(session, "Hill"), "HILL-0", "00:00:00:00:01:00")
        session.commit()
    runner = CliRunner()
    queued = runner.invoke(cli, ["wake", "HILL-0", "--reason", "patching", "--wait", "0.5",
                                 "--database-url", database_url])
    assert queued.exit_code == 0, queued.output
    assert "queued for " in queued.output
    assert ("1 wake(s) requested at 20 per second per site, 0 skipped: 0 sent, 0 ordered via a relay, 0 failed, "
            "1 not yet routed") in queued.output
    listed = runner.invoke(cli, ["wake", "list", "--json", "--database-url", database_url])
    assert listed.exit_code == 0 and '"hostname": "HILL-0"' in listed.output
    again = runner.invoke(cli, ["wake", "HILL-0", "--database-url", database_url])
    assert "0 wake(s) requested" in again.output and "not again yet" in again.output
    unknown = runner.invoke(cli, ["wake", "NOPE", "--database-url", database_url])
    assert unknown.exit_code == 2
    assert "caretaker: error: no device with id, hostname, serial or asset tag 'NOPE'" in unknown.output


def test_cli_says_what_the_running_controller_did_for_each_device(engine, database_url, tmp_path: Path):
    """Sent direct on the controller's own subnet; failed at once, with the reason and exit status 1, where
    nothing can reach the subnet."""
    listener = builders.Listener.open()
    with Session(engine) as session:
        hill = builders.site(session, "Hill")
        builders.device(session, hill, "NEAR", "00:00:00:00:01:01", "127.0.0.9", 8, room="Lab")
        builders.device(session, hill, "FAR", "00:00:00:00:01:02", "10.77.0.9", 24, room="Lab")
        session.commit()
    settings = Settings(database_url=database_url, data_dir=tmp_path, wake_local_networks=["127.0.0.0/8"],
                        wake_port=listener.port)
    service = WakeService(engine, settings)
    service.start()
    try:
        woken = CliRunner().invoke(cli, ["wake", "--site", "Hill", "--group", "Lab", "--database-url", database_url],
                                   env={"CARETAKER_WAKE_PORT": str(listener.port)})
        assert listener.receive() == builders.magic("00:00:00:00:01:01")
    finally:
        service.stop()
        listener.close()
    assert woken.exit_code == 1, woken.output
    lines = {line.split()[2]: line for line in woken.stdout.splitlines()[1:]}
    assert lines["NEAR"].endswith("sent direct to 127.255.255.255; waiting for the device to report in")
    assert lines["FAR"].endswith("failed: no relay agent on 10.77.0.0/24 is awake and reporting, and directed "
                                 "broadcast is not allowed there")
    assert "0 skipped: 1 sent, 0 ordered via a relay, 1 failed, 0 not yet routed" in woken.stderr


def test_cli_sends_one_packet_to_a_given_address_for_testing_a_nic():
    listener = builders.Listener.open()
    try:
        sent = CliRunner().invoke(cli, ["wake", "--mac", "00-1A-2B-3C-4D-5E", "--address", "127.0.0.1",
                                        "--port", str(listener.port)])
        assert sent.exit_code == 0, sent.output
        assert listener.receive() == builders.magic("00:1a:2b:3c:4d:5e")
    finally:
        listener.close()
    bad = CliRunner().invoke(cli, ["wake", "--mac", "00:1a:2b", "--address", "127.0.0.1"])
    assert bad.exit_code == 2 and "caretaker: error: '00:1a:2b' is not a MAC address" in bad.output
    both = CliRunner().invoke(cli, ["wake", "PC1", "--mac", "00:1a:2b:3c:4d:5e"])
    assert both.exit_code == 2 and "--mac sends one packet on its own" in both.output
