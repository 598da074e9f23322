"""The rules of a teacher's wake button (power/staff.py), on a database: only the rooms granted, exam windows
and devices leaving the estate are not woken, a time must be later today, and the per-site limit covers all
staff together. The end-to-end test (tests/test_staff_wake_end_to_end.py) drives the same rules from a phone
and a staff API token through a real controller."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlmodel import Session, select

from controller.lifecycle.models import Asset
from controller.policy.loader import load
from controller.power.models import WakeRequest
from controller.power.staff import StaffLimits, staff_rooms, wake_room
from controller.power.wake import WakeConfig
from controller.register.models import ChangeRecord
from tests.controller.power import builders

NOW = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)  # a Tuesday in term, 09:00 in London (GMT)
EXAMS = """\
name: exams
applies_to: all
exceptions:
  exam_windows:
    - {name: Mocks, groups: [Sports Hall], start: 2026-02-10, end: 2026-02-10, hours: "09:30-12:00"}
"""


@pytest.fixture
def school(engine):
    with Session(engine) as session:
        hill = builders.site(session, "Hill")
        builders.device(session, hill, "HALL-01", "00:00:00:00:02:01", room="Sports Hall")
        builders.device(session, hill, "HALL-02", "00:00:00:00:02:02", room="sports hall ")
        leaving = builders.device(session, hill, "HALL-03", "00:00:00:00:02:03", room="Sports Hall")
        session.add(Asset(device_id=leaving.id, state="awaiting_disposal"))
        builders.device(session, hill, "LAB-01", "00:00:00:00:02:04", room="Lab")
        session.commit()
        return hill.id


DEFAULT_LIMITS = StaffLimits()


def wake(session, rooms, room="Sports Hall", at=None, now=NOW, limits=DEFAULT_LIMITS, policies=None, actor="user:t"):
    return wake_room(session, actor, frozenset(rooms), "Hill", room, at, now, WakeConfig(), limits,
                     policies.policies if policies else (), policies.calendars if policies else None)


def test_a_granted_room_is_matched_without_regard_to_case_and_a_leaving_device_is_not_woken(engine, school):
    rooms = {(school, "sports hall")}
    with Session(engine) as session:
        assert [(r.room, r.devices) for r in staff_rooms(session, frozenset(rooms))] == [("Sports Hall", 3)]
        result = wake(session, rooms)
        session.commit()
    assert result.refused is None
    assert sorted(q.hostname for q in result.queued) == ["HALL-01", "HALL-02"]
    assert [(s.hostname, s.why) for s in result.skipped] == [
        ("HALL-03", "leaving the estate (awaiting disposal or disposed)")]


def test_a_room_not_granted_is_refused_and_the_refusal_is_audited(engine, school):
    with Session(engine) as session:
        result = wake(session, {(school, "sports hall")}, room="Lab")
        session.commit()
        (audit,) = session.exec(select(ChangeRecord).where(ChangeRecord.action == "staff_wake_refused")).all()
        assert session.exec(select(WakeRequest)).all() == []
    assert (result.status, result.refused) == (403, "not one of your rooms")
    assert (audit.actor, audit.object_id, audit.after["room"]) == ("user:t", str(school), "Lab")


def test_an_exam_window_at_the_wake_time_keeps_the_room_asleep(engine, school, tmp_path):
    (tmp_path / "exams.yaml").write_text(EXAMS)
    policies = load([tmp_path / "exams.yaml"])
    with Session(engine) as session:
        before = wake(session, {(school, "sports hall")}, at=time(9, 15), policies=policies)
        during = wake(session, {(school, "sports hall")}, at=time(10, 0), policies=policies, actor="user:u")
    assert len(before.queued) == 2 and before.due_at == datetime(2026, 2, 10, 9, 15, tzinfo=UTC)
    assert (during.status, during.queued) == (409, [])
    assert "HALL-01: exam window 'Mocks' at 10:00: not woken" in during.refused


def test_a_time_already_past_today_is_refused(engine, school):
    with Session(engine) as session:
        result = wake(session, {(school, "sports hall")}, at=time(8, 30))
    assert (result.status, result.refused) == (422, "08:30 has passed today; give a later time, or wake now")


def test_the_site_limit_counts_every_staff_member_together(engine, school):
    limits = StaffLimits(per_user=10, per_site=2)
    with Session(engine) as session:
        for minute, actor in enumerate(("user:a", "user:b")):
            assert wake(session, {(school, "lab")}, room="Lab", now=NOW + timedelta(minutes=20 * minute),
                        limits=limits, actor=actor).refused is None
        third = wake(session, {(school, "lab")}, room="Lab", now=NOW + timedelta(minutes=40), limits=limits,
                     actor="user:c")
    assert third.status == 429 and third.retry_after == 20 * 60  # until the first request is an hour old
    assert third.refused == "too many wake requests for this site in the last hour; try again in 1200 s"
