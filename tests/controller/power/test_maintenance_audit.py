"""`caretaker maintenance`: per device in each maintenance window, woken / updated / powered down, and the
wake-on-LAN failures with the cause the agent's wake readiness points to.

Wednesday 12 November 2025 (GMT): "Windows updates" from 02:00 for 90 minutes at Oakfield Primary.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select
from typer.testing import CliRunner

from controller.cli import app
from controller.policy.loader import load
from controller.policy.store import ActiveSet
from controller.power.models import WakeRequest
from controller.power.scheduled import ScheduledWakes
from controller.power.wake import WakeConfig
from controller.register.models import ActionRecord, DeviceMac
from tests.controller.energy.estate import device, site


class Fixed:
    """A policy store that always has the same policies in force."""

    def __init__(self, active: ActiveSet) -> None:
        self._active = active

    def current(self) -> ActiveSet:
        return self._active

WINDOW = datetime(2025, 11, 12, 2, 0, tzinfo=UTC)
POLICY = """\
name: oakfield
applies_to: {sites: [Oakfield Primary]}
school_hours: {weekdays: "08:00-16:00"}
idle: {minutes_without_input: 20}
action: shutdown
mode: force
maintenance_windows:
  - {name: Windows updates, weekdays: [wednesday], start: "02:00", minutes: 90, until_updates_done: true}
"""


def at(minutes: int) -> datetime:
    return WINDOW + timedelta(minutes=minutes)


def record(session: Session, of, when: datetime, kind: str, outcome: str, reason: str = "",
           details: dict | None = None) -> None:
    session.add(ActionRecord(at=when, site_id=of.site_id, device_id=of.id, kind=kind, outcome=outcome, mode="force",
                             reason=reason or outcome, actor="agent:test", details=details))


def wake(session: Session, of, status: str, failure: str | None = None) -> None:
    session.add(WakeRequest(site_id=of.site_id, device_id=of.id, mac="00:1a:2b:3c:4d:01", status=status,
                            reason="maintenance: Windows updates", requested_by="controller",
                            requested_at=at(-2), due_at=at(-1), failure=failure,
                            failed_at=at(10) if failure else None, confirmed_at=None if failure else at(1)))


def test_each_device_woken_updated_and_powered_down_and_failed_wakes_with_their_cause(engine, database_url,
                                                                                     tmp_path):
    with Session(engine) as session:
        oak = site(session)
        updated = device(session, oak, "OAK-ICT1-PC01", "desktop")
        slow = device(session, oak, "OAK-ICT1-PC02", "desktop")
        asleep = device(session, oak, "OAK-ICT1-PC03", "desktop",
                        inventory={"wake": {"fast_startup": True, "modern_standby": False, "nic_armed": True}})
        wake(session, updated, "confirmed")
        record(session, updated, at(3), "updates", "installing", "TiWorker.exe running (pid 4120)")
        record(session, updated, at(41), "updates", "reboot_pending", "RebootRequired key present")
        record(session, updated, at(42), "shutdown", "done", "shutdown (force): idle 25 min")
        wake(session, slow, "confirmed")
        record(session, slow, at(5), "updates", "installing", "TiWorker.exe running (pid 812)")
        record(session, slow, at(90), "shutdown", "deferred", "deferred: OS updates installing",
               {"deferred_for": "updates_installing"})
        wake(session, asleep, "failed", "no report within 300 s of 3 packets")
        session.commit()
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "oakfield.yaml").write_text(POLICY)
    result = CliRunner().invoke(app, ["maintenance", "--since", "2025-11-12", "--json", "--database-url",
                                      database_url, "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    rows = {d["hostname"]: (d["woken"], d["updated"], d["powered_down"], d["deferred_for_updates"])
            for d in found["devices"]}
    assert rows == {
        "OAK-ICT1-PC01": ("confirmed", "installed", "shutdown done at 02:42 UTC", 0),
        "OAK-ICT1-PC02": ("confirmed", "installing", "not yet", 1),
        "OAK-ICT1-PC03": ("failed", "none_seen", "not yet", 0),
    }
    assert {d["window"] for d in found["devices"]} == {"Windows updates"}
    (failed,) = found["wake_failures"]
    assert (failed["hostname"], failed["wake_failure"], failed["wake_cause"]) == (
        "OAK-ICT1-PC03", "no report within 300 s of 3 packets", "Windows Fast Startup enabled")
    text = CliRunner().invoke(app, ["maintenance", "--since", "2025-11-12", "--window", "Windows updates",
                                    "--database-url", database_url, "--data-dir", str(tmp_path)])
    assert "Wake-on-LAN failures in the windows:" in text.stdout and "Windows Fast Startup enabled" in text.stdout
    unknown = CliRunner().invoke(app, ["maintenance", "--since", "2025-11-12", "--window", "Backups",
                                       "--database-url", database_url, "--data-dir", str(tmp_path)])
    assert unknown.exit_code != 0 and "no maintenance window called 'Backups'" in unknown.output


def test_devices_are_woken_for_a_window_about_to_open_once(engine, tmp_path):
    """The scheduled-wake job (the one that sends every wake a compiled schedule promises) wakes Oakfield's
    PC for its window, once, and nothing at Birchwood, which has no such window."""
    (tmp_path / "oakfield.yaml").write_text(POLICY)
    loaded = load([tmp_path])
    active = ActiveSet(tuple(loaded.policies), loaded.calendars or {}, "test", placement=tuple(loaded.placement))
    job = ScheduledWakes(Fixed(active), WakeConfig())
    with Session(engine) as session:
        oak, elsewhere = site(session), site(session, "Birchwood Academy")
        pc = device(session, oak, "OAK-ICT1-PC01", "desktop")
        other = device(session, elsewhere, "BIR-PC01", "desktop")
        session.add_all([DeviceMac(mac="00:1a:2b:3c:4d:01", device_id=pc.id),
                         DeviceMac(mac="00:1a:2b:3c:4d:02", device_id=other.id)])
        session.commit()
        assert job(session, at(-30)) == {"due": 0}  # not yet
        assert job(session, at(0))["queued"] == 1
        assert job(session, at(1)).get("queued", 0) == 0  # woken once
        session.commit()
        (wake,) = session.exec(select(WakeRequest)).all()
        assert (wake.device_id, wake.requested_by) == (pc.id, "controller:schedule")
        assert "Windows updates" in wake.reason
