"""The agent API as agents rely on it: enroll once, then every report counted exactly once.

Runs the real app (with its lifespan: migrations, the ingest writer) on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controller.api.app import create_app
from controller.db import session_scope
from controller.register.enrollment import create_token, revoke_token
from controller.register.models import Agent, ChangeRecord, Device, EnergyBucket
from controller.register.models import Report as ReportRow
from controller.settings import Settings
from controller.timeutil import utcnow
from tests.factories import T0, batch_json, consecutive, enroll_json, inventory, report

ENROLL = "/api/v1/agent/enroll"
REPORTS = "/api/v1/agent/reports"


@pytest.fixture
def client(engine: Engine, tmp_path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, max_body_bytes=64 * 1024)
    with TestClient(create_app(settings, engine)) as client:
        yield client


def new_token(engine: Engine, site: str = "Hillside Primary", days: int = 30) -> str:
    with session_scope(engine) as session:
        return create_token(session, site, utcnow(), days, "test").token


def enrolled(client: TestClient, engine: Engine, **inventory_changes) -> dict[str, str]:
    answer = client.post(ENROLL, json=enroll_json(new_token(engine), inventory(**inventory_changes)))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return {"Authorization": f"Bearer {body['agent_id']}:{body['secret']}"}


def stored(engine: Engine, model, *where) -> list:
    with Session(engine) as session:
        return list(session.exec(select(model).where(*where)).all())


def total_joules(engine: Engine) -> float:
    with Session(engine) as session:
        return session.exec(select(func.coalesce(func.sum(EnergyBucket.joules), 0.0))).one()


class TestEnrollment:
    def test_a_valid_token_gives_the_agent_its_own_identity_and_device(self, client, engine):
        answer = client.post(ENROLL, json=enroll_json(new_token(engine, "Northgate Academy")))
        assert answer.status_code == 201
        body = answer.json()
        assert body["site"] == "Northgate Academy"
        (agent,) = stored(engine, Agent)
        assert agent.id == body["agent_id"]
        assert agent.secret_hash != body["secret"] and body["secret"] not in agent.secret_hash
        (device,) = stored(engine, Device)
        assert (device.id, device.hostname, device.serial) == (body["device_id"], "HILL-R12-PC07", "CZC1234XYZ")

    @pytest.mark.parametrize("case", ["unknown", "expired", "revoked"])
    def test_an_unusable_token_is_refused_and_creates_nothing(self, client, engine, case):
        token = "ctk_not-a-real-token"
        if case == "expired":
            with session_scope(engine) as session:
                issued = create_token(session, "Hillside Primary", utcnow() - timedelta(days=3), 1, "test")
            token = issued.token
        elif case == "revoked":
            with session_scope(engine) as session:
                issued = create_token(session, "Hillside Primary", utcnow(), 30, "test")
                revoke_token(session, issued.record.id, utcnow(), "test")
            token = issued.token
        answer = client.post(ENROLL, json=enroll_json(token))
        assert answer.status_code == 401
        assert case in answer.json()["detail"]
        assert stored(engine, Agent) == [] and stored(engine, Device) == []

    def test_a_reimaged_machine_keeps_its_device_and_its_old_agent_stops_working(self, client, engine):
        first = enrolled(client, engine, machine_id="old-image-id")
        second = enrolled(client, engine, machine_id="new-image-id")
        assert len(stored(engine, Device)) == 1
        assert client.post(REPORTS, json=batch_json([report(1)]), headers=second).status_code == 200
        refused = client.post(REPORTS, json=batch_json([report(1)]), headers=first)
        assert refused.status_code == 401 and "retired" in refused.json()["detail"]

    def test_a_cloned_image_is_kept_apart_and_flagged(self, client, engine):
        enrolled(client, engine, serial="CZC0000001", macs=("00:1a:2b:00:00:01",))
        enrolled(client, engine, hostname="HILL-R12-PC08", serial="CZC0000002", macs=("00:1a:2b:00:00:02",))
        devices = sorted(stored(engine, Device), key=lambda d: d.id)
        assert len(devices) == 2
        assert devices[1].conflict_with == devices[0].id
        assert "machine-id" in devices[1].conflict_reason or "UUID" in devices[1].conflict_reason


class TestIngest:
    def test_reports_are_stored_once_and_their_energy_lands_in_hourly_buckets(self, client, engine):
        auth = enrolled(client, engine)
        reports = consecutive(1, 24, start=T0)  # two hours of five-minute reports at 45 W
        answer = client.post(REPORTS, json=batch_json(reports), headers=auth)
        assert answer.status_code == 200
        assert answer.json()["accepted"] == list(range(1, 25))
        buckets = sorted(stored(engine, EnergyBucket), key=lambda b: b.hour)
        assert [b.hour for b in buckets] == [T0, T0 + timedelta(hours=1)]
        assert [round(b.joules) for b in buckets] == [45 * 3600, 45 * 3600]
        assert {(b.state, b.method) for b in buckets} == {("idle", "model")}

    def test_a_replayed_batch_is_acknowledged_but_not_counted_twice(self, client, engine):
        auth = enrolled(client, engine)
        body = batch_json(consecutive(1, 6))
        client.post(REPORTS, json=body, headers=auth)
        before = total_joules(engine)
        again = client.post(REPORTS, json=body, headers=auth)
        assert again.status_code == 200
        ack = again.json()
        assert (ack["accepted"], ack["duplicate"], ack["report_interval_seconds"]) == ([], [1, 2, 3, 4, 5, 6], 300)
        assert ack["wake_orders"] == []  # not a relay: no wake orders, whatever else the reply carries
        assert total_joules(engine) == pytest.approx(before)
        assert len(stored(engine, ReportRow)) == 6

    def test_a_report_reusing_a_stored_number_with_another_start_is_refused_not_stored_twice(self, client,
                                                                                            engine):
        """(agent, seq) names one report: the table's key holds the start too (its partitions need it),
        so ingest must refuse a second report under a number already used (one batch repeating a number is
        refused whole by the protocol)."""
        auth = enrolled(client, engine)
        first = consecutive(1, 3)
        client.post(REPORTS, json=batch_json(first), headers=auth)
        before = total_joules(engine)
        later = report(2, first[-1].end + timedelta(minutes=5))  # after the last one stored, seq 2 again
        answer = client.post(REPORTS, json=batch_json([later, report(4, later.end)]), headers=auth).json()
        assert answer["accepted"] == [4] and [r["seq"] for r in answer["rejected"]] == [2]
        assert "reuses the number of a report starting at" in answer["rejected"][0]["reason"]
        assert sorted(row.seq for row in stored(engine, ReportRow)) == [1, 2, 3, 4]
        assert total_joules(engine) == pytest.approx(before * 4 / 3)

    def test_out_of_order_and_overlapping_batches_count_each_report_once(self, client, engine):
        auth = enrolled(client, engine)
        reports = consecutive(1, 12)
        late, early, overlap = reports[6:], reports[:4], reports[2:8]
        assert client.post(REPORTS, json=batch_json(late), headers=auth).json()["accepted"] == [7, 8, 9, 10, 11, 12]
        assert client.post(REPORTS, json=batch_json(early), headers=auth).json()["accepted"] == [1, 2, 3, 4]
        mixed = client.post(REPORTS, json=batch_json(overlap), headers=auth).json()
        assert (mixed["accepted"], mixed["duplicate"]) == ([5, 6], [3, 4, 7, 8])
        assert total_joules(engine) == pytest.approx(12 * 300 * 45.0)
        (agent,) = stored(engine, Agent)
        assert (agent.reports, agent.last_seq) == (12, 12)

    def test_the_best_method_is_accounted_and_the_others_are_kept(self, client, engine):
        from agent.protocol import EnergySample, PowerMethod, PowerState

        auth = enrolled(client, engine)
        base = report(1)
        measured = base.__class__(**{**base.__dict__, "energy": (
            EnergySample(PowerMethod.MODEL, PowerState.IDLE, 300, 300 * 45.0),
            EnergySample(PowerMethod.RAPL, PowerState.IDLE, 300, 300 * 21.5, detail="package-0+dram"),
            EnergySample(PowerMethod.BATTERY, PowerState.IDLE, 300, None, status="unavailable: on AC"),
        )})
        client.post(REPORTS, json=batch_json([measured]), headers=auth)
        (bucket,) = stored(engine, EnergyBucket)
        assert (bucket.method, bucket.joules) == ("rapl", pytest.approx(300 * 21.5))
        (row,) = stored(engine, ReportRow)
        assert [s["method"] for s in row.samples] == ["model", "rapl", "battery"]

    def test_an_agent_writes_only_its_own_device(self, client, engine):
        mine = enrolled(client, engine)
        enrolled(client, engine, hostname="OTHER", serial="CZC9999999", macs=("00:1a:2b:99:99:99",),
                 machine_id="other-machine", uuid="4c4c4544-0000-0000-0000-000000000099")
        client.post(REPORTS, json=batch_json([report(1, with_inventory=inventory(hostname="RENAMED"))]),
                    headers=mine)
        devices = {d.id: d for d in stored(engine, Device)}
        (row,) = stored(engine, ReportRow)
        assert devices[row.device_id].hostname == "RENAMED"
        assert sorted(d.hostname for d in devices.values()) == ["OTHER", "RENAMED"]

    def test_an_inventory_change_is_applied_and_logged(self, client, engine):
        auth = enrolled(client, engine)
        changed = inventory(memory_bytes=32 * 2**30, os=inventory().os.__class__("Windows", "11 Education 24H2"))
        client.post(REPORTS, json=batch_json([report(1, with_inventory=changed)]), headers=auth)
        (device,) = stored(engine, Device)
        assert device.os_version == "11 Education 24H2"
        updates = stored(engine, ChangeRecord, ChangeRecord.action == "update")
        assert updates and updates[-1].after == {"os_version": "11 Education 24H2"}


class TestBadInput:
    """Each refusal is a 4xx that says what is wrong, and nothing is stored."""

    @pytest.fixture
    def auth(self, client, engine) -> dict[str, str]:
        return enrolled(client, engine)

    def refused(self, client, engine, auth, body: bytes | dict, status: int) -> dict:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        answer = client.post(REPORTS, content=content, headers={**auth, "Content-Type": "application/json"})
        assert answer.status_code == status, answer.text
        assert stored(engine, ReportRow) == [] and total_joules(engine) == 0
        return answer.json()

    def test_invalid_json(self, client, engine, auth):
        assert "not valid JSON" in self.refused(client, engine, auth, b'{"reports": [', 400)["detail"]

    def test_unknown_protocol_version(self, client, engine, auth):
        body = batch_json([report(1)])
        body["protocol_version"] = 99
        assert "protocol version 99 is not supported" in self.refused(client, engine, auth, body, 422)["detail"]

    def test_a_body_over_the_size_limit(self, client, engine, auth):
        body = batch_json(consecutive(1, 400))
        assert "larger than" in self.refused(client, engine, auth, body, 413)["detail"]


class TestOneBadReport:
    """A report that can never be accepted is answered in ``rejected`` with its reason; the rest of its
    batch is stored, so one poisoned report never holds back the good ones."""

    @pytest.fixture
    def auth(self, client, engine) -> dict[str, str]:
        return enrolled(client, engine)

    def answered(self, client, engine, auth, body: dict, stored_seqs: list[int]) -> dict[int, str]:
        answer = client.post(REPORTS, json=body, headers=auth)
        assert answer.status_code == 200, answer.text
        assert sorted(r.seq for r in stored(engine, ReportRow)) == stored_seqs
        assert answer.json()["accepted"] == stored_seqs
        return {r["seq"]: r["reason"] for r in answer.json()["rejected"]}

    def test_wrong_types(self, client, engine, auth):
        body = batch_json(consecutive(1, 2))
        body["reports"][0]["activity"]["cpu_percent"] = "4.0"
        assert "activity.cpu_percent" in self.answered(client, engine, auth, body, [2])[1]

    def test_negative_energy(self, client, engine, auth):
        body = batch_json(consecutive(1, 3))
        body["reports"][1]["energy"][0]["joules"] = -5.0
        assert "energy must not be negative" in self.answered(client, engine, auth, body, [1, 3])[2]
        assert total_joules(engine) == pytest.approx(2 * 300 * 45.0)

    def test_a_timestamp_far_in_the_future(self, client, engine, auth):
        future = datetime.now(UTC) + timedelta(days=30)
        assert "in the future" in self.answered(client, engine, auth, batch_json([report(1), report(2, start=future)]),
                                                [1])[2]

    def test_a_naive_timestamp(self, client, engine, auth):
        body = batch_json(consecutive(1, 2))
        body["reports"][1]["start"] = "2026-02-16T18:00:00"
        assert "UTC offset" in self.answered(client, engine, auth, body, [1])[2]

    def test_a_control_character_in_an_inventory_string(self, client, engine, auth):
        body = batch_json([report(1, with_inventory=inventory()), *consecutive(2, 1, start=T0 + timedelta(minutes=5))])
        body["reports"][0]["inventory"]["hostname"] = "HILL\x00PC"
        assert "control character" in self.answered(client, engine, auth, body, [2])[1]
        (device,) = stored(engine, Device)
        assert device.hostname == "HILL-R12-PC07"

    def test_a_seq_or_wake_id_beyond_the_database_integer(self, client, engine, auth):
        body = batch_json(consecutive(1, 2))
        body["reports"][1]["relayed_wakes"] = [2**63]
        assert "relayed wake ids" in self.answered(client, engine, auth, body, [1])[2]
        body = batch_json(consecutive(3, 1, start=T0 + timedelta(hours=1)))
        body["reports"][0]["seq"] = 2**63  # cannot be named: the batch is refused whole, nothing stored
        answer = client.post(REPORTS, json=body, headers=auth)
        assert answer.status_code == 422 and "seq" in answer.json()["detail"]
        assert sorted(r.seq for r in stored(engine, ReportRow)) == [1]

    def test_every_report_bad_is_still_an_answer(self, client, engine, auth):
        body = batch_json(consecutive(1, 2))
        for r in body["reports"]:
            r["activity"]["cpu_percent"] = 400.0
        assert set(self.answered(client, engine, auth, body, [])) == {1, 2}


class TestAuthentication:
    @pytest.fixture
    def auth(self, client, engine) -> dict[str, str]:
        return enrolled(client, engine)

    @pytest.mark.parametrize("header", [None, "Bearer nonsense", "Bearer abc:def", "Basic dXNlcjpwYXNz"])
    def test_missing_or_wrong_credentials(self, client, engine, auth, header):
        headers = {"Authorization": header} if header else {}
        answer = client.post(REPORTS, json=batch_json([report(1)]), headers=headers)
        assert answer.status_code == 401
        assert stored(engine, ReportRow) == []

    def test_a_wrong_secret_for_a_real_agent(self, client, engine, auth):
        agent_id = auth["Authorization"].split()[1].split(":")[0]
        answer = client.post(REPORTS, json=batch_json([report(1)]), headers={"Authorization": f"Bearer {agent_id}:x"})
        assert answer.status_code == 401


def test_a_retired_agent_is_refused_even_after_it_was_cached(client, engine):
    first = enrolled(client, engine, machine_id="old-image-id")
    assert client.post(REPORTS, json=batch_json([report(1)]), headers=first).status_code == 200  # now cached
    enrolled(client, engine, machine_id="new-image-id")
    refused = client.post(REPORTS, json=batch_json([report(2)]), headers=first)
    assert refused.status_code == 401 and "retired" in refused.json()["detail"]


def test_the_report_route_keeps_the_apps_headers_refusals_and_methods(client, engine):
    """Reports take a shorter path than other routes (api/shortcut.py): the same headers and answers."""
    headers = enrolled(client, engine)
    accepted = client.post(REPORTS, headers=headers, json=batch_json([report(1, T0)]))
    refused = client.post(REPORTS, headers={"Authorization": "Bearer nobody:wrong"}, json=batch_json([report(1, T0)]))
    for answer in (accepted, refused):
        assert answer.headers["x-frame-options"] == "DENY" and "content-security-policy" in answer.headers
        assert answer.headers["content-type"] == "application/json"
    assert accepted.status_code == 200 and accepted.json()["accepted"] == [1]
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert set(refused.json()) == {"detail"}
    assert client.post(REPORTS, headers=headers, content=b"[" * 40).status_code == 422  # the guard, before it
    assert client.get(REPORTS, headers=headers).status_code == 405  # other methods go the usual way
