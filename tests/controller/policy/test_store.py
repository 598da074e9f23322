"""The controller's active policy set: reloads, the change log, mode switches, and a broken edit kept out."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlmodel import Session, select

from controller.policy.model import Mode
from controller.policy.store import PolicyStore, UnknownPolicy, diff_summary
from controller.register.models import ChangeRecord
from tests.conftest import REPO


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def policy_dir(tmp_path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    shutil.copy(REPO / "policies" / "primary.yaml", directory)
    shutil.copytree(REPO / "policies" / "calendars", directory / "calendars")
    return directory


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def store(policy_dir, engine, ticks) -> PolicyStore:
    return PolicyStore(policy_dir, engine, check_seconds=2.0, monotonic=ticks)


def changes(engine) -> list[tuple[str, str, str, dict | None]]:
    with Session(engine) as session:
        rows = session.exec(select(ChangeRecord).where(ChangeRecord.object_type == "policy")
                            .order_by(ChangeRecord.id)).all()
        return [(r.action, r.object_id, r.actor, r.after) for r in rows]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a visibly newer mtime


def test_a_missing_directory_means_no_policies(engine, tmp_path):
    active = PolicyStore(tmp_path / "nowhere", engine).current()
    assert active.policies == () and active.problem is None


def test_first_load_records_each_policy_and_a_restart_records_nothing_new(store, engine, policy_dir, ticks):
    first = store.current()
    assert [p.name for p in first.policies] == ["hillside-primary"]
    assert [(a, o, who) for a, o, who, _ in changes(engine)] == [
        ("create", "hillside-primary", "controller:policy-dir")]
    again = PolicyStore(policy_dir, engine).current()
    assert again.version == first.version and len(changes(engine)) == 1


def test_an_edit_is_picked_up_after_the_check_interval_and_logged_with_a_summary(store, engine, policy_dir, ticks):
    before = store.current().version
    edit(policy_dir / "primary.yaml", "mode: observe", "mode: warn")
    assert store.current().version == before  # not looked at again within check_seconds
    ticks.now += 2.0
    after = store.current()
    assert after.version != before and after.named("hillside-primary").power.mode is Mode.WARN
    action, name, _, details = changes(engine)[-1]
    assert (action, name, details["summary"]) == ("update", "hillside-primary", "power.mode observe → warn")
    assert len(details["content_hash"]) == 64


def test_a_broken_edit_keeps_the_previous_policies_in_force(store, engine, policy_dir, ticks):
    good = store.current()
    edit(policy_dir / "primary.yaml", 'weekdays: "07:45-17:00"', 'weekdays: "25:00-17:00"')
    ticks.now += 2.0
    kept = store.current()
    assert kept.policies == good.policies
    assert "primary.yaml" in kept.problem and "previous policies stay in force" in kept.problem


def test_a_mode_switch_wins_over_the_file_is_logged_by_its_actor_and_can_be_undone(store, engine, ticks):
    version = store.current().version
    with Session(engine) as session:
        store.set_mode(session, "hillside-primary", Mode.FORCE, "user:jo")
        session.commit()
    switched = store.current()
    assert switched.named("hillside-primary").power.mode is Mode.FORCE and switched.version != version
    (line,) = store.list_policies()
    assert (line.mode, line.file_mode, line.switched) == ("force", "observe", True)
    with Session(engine) as session:
        store.set_mode(session, "hillside-primary", Mode.OBSERVE, "user:sam")
        session.commit()
    assert store.current().version == version and not store.list_policies()[0].switched
    assert [(a, who, after) for a, _, who, after in changes(engine)[-2:]] == [
        ("set_mode", "user:jo", {"mode": "force"}), ("set_mode", "user:sam", {"mode": "observe"})]


def test_switching_an_unknown_policy_is_refused(store, engine):
    store.current()
    with Session(engine) as session, pytest.raises(UnknownPolicy, match="no policy called 'nope'"):
        store.set_mode(session, "nope", Mode.WARN, "user:jo")


def test_a_removed_policy_is_logged(store, engine, policy_dir, ticks):
    store.current()
    (policy_dir / "primary.yaml").unlink()
    ticks.now += 2.0
    assert store.current().policies == ()
    assert changes(engine)[-1][:2] == ("delete", "hillside-primary")


def test_the_diff_summary_names_what_changed(store):
    from dataclasses import replace

    policy = store.current().named("hillside-primary")
    changed = replace(policy, priority=5, power=replace(policy.power, retry_minutes=45))
    assert diff_summary(policy, changed) == "priority 0 → 5; power.retry_minutes 30 → 45"
