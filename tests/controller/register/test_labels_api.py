"""PATCH/GET /api/v1/devices/{device}/labels through the real app: network managers set rooms and tags by
hand, every reader sees each value's source, and bad requests are clear 4xx with nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from controller.api.app import create_app
from controller.db import session_scope
from controller.register.models import ChangeRecord, Device
from controller.settings import Settings
from controller.web.accounts import Role, create_token
from tests.controller.power import builders


@pytest.fixture
def client(engine, database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with Session(engine) as session:
        hill, dale = builders.site(session, "Hill"), builders.site(session, "Dale")
        builders.device(session, hill, "HILL-0", "00:00:00:00:01:00", room="ICT 2")
        builders.device(session, hill, "TWIN", "00:00:00:00:01:01")
        builders.device(session, dale, "TWIN", "00:00:00:00:02:00")
        session.commit()
    with TestClient(create_app(Settings(database_url=database_url, data_dir=tmp_path), engine)) as test_client:
        yield test_client


def bearer(engine, role: Role, sites: list[str] | None = None) -> dict[str, str]:
    with session_scope(engine) as session:
        return {"Authorization": f"Bearer {create_token(session, f't-{role}', role, sites or [], None, 'test')[0]}"}


def test_a_network_manager_sets_a_room_and_tags_and_readers_see_their_sources(client, engine):
    manager = bearer(engine, Role.network_manager)
    answer = client.patch("/api/v1/devices/HILL-0/labels", json={"room": "Hall", "tag": ["signage"]}, headers=manager)
    assert answer.status_code == 200, answer.text
    seen = client.get("/api/v1/devices/1/labels", headers=bearer(engine, Role.bursar)).json()
    assert seen["room"] == {"value": "Hall", "source": "hand", "detail": ""}
    assert seen["tags"] == [{"value": "signage", "source": "hand", "detail": ""}]
    cleared = client.patch("/api/v1/devices/1/labels", json={"clear_room": True, "untag": ["signage"]},
                           headers=manager).json()
    assert cleared["room"] == {"value": "ICT 2", "source": "register", "detail": ""}
    assert (cleared["tags"], cleared["untagged"]) == ([], ["signage"])
    with Session(engine) as session:
        logged = session.exec(select(ChangeRecord).where(ChangeRecord.action == "labels")).all()
    assert [(r.actor, r.after) for r in logged] == [
        ("token:t-network_manager", {"hand_room": "Hall", "hand_tags": ["signage"]}),
        ("token:t-network_manager", {"hand_room": None, "hand_tags": None, "hand_untags": ["signage"]})]


def test_only_a_network_manager_may_set_labels(client, engine):
    for role in (Role.bursar, Role.auditor):
        assert client.patch("/api/v1/devices/1/labels", json={"tag": ["x"]},
                            headers=bearer(engine, role)).status_code == 403


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/api/v1/devices/NOPE/labels", {"tag": ["signage"]}, 404),
    ("/api/v1/devices/TWIN/labels", {"tag": ["signage"]}, 409),
    ("/api/v1/devices/1/labels", {"tag": ["=cmd|' /C calc'!A0"]}, 422),
    ("/api/v1/devices/1/labels", {"room": "Hall", "clear_room": True}, 422),
    ("/api/v1/devices/1/labels", {"room": "Hall\u0000"}, 422),
    ("/api/v1/devices/1/labels", {"tag": ["a"], "untag": ["A"]}, 422),
    ("/api/v1/devices/1/labels", {"tags": ["signage"]}, 422),
    ("/api/v1/devices/1/labels", {"tag": ["x" * 51]}, 422),
])
def test_bad_requests_are_clear_and_write_nothing(client, engine, path, body, status):
    answer = client.patch(path, json=body, headers=bearer(engine, Role.network_manager))
    assert answer.status_code == status, answer.text
    with Session(engine) as session:
        assert [(d.hand_room, d.hand_tags, d.hand_untags) for d in session.exec(select(Device))] == [(None,) * 3] * 3
