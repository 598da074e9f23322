"""The reports' fixture estate: two schools of one trust, a week of hourly energy, actions and policy changes.

The week is Monday 10 to Sunday 16 November 2025: GMT, so London's local time is UTC, inside the autumn
term, with no bank holiday. Every hour of every device is reported (no silence to attribute). All three
devices are laptops, which the catalogue counts without a monitor, at a flat 30 p/kWh, and 2025's carbon
factor is 0.177 kgCO2e/kWh. The arithmetic each test expects is written out in that test.

Oakfield Primary (200 pupils) has a force-mode policy with school hours 08:00-16:00 on weekdays:
  OAK-LIB-01 (Library): idle all week at 15 W (model).
  OAK-ICT-01 (ICT Suite): active 08:00-16:00 on weekdays at 25 W, off otherwise at 0.5 W (model).
Brook Academy (no pupil number) has no policy, so the reports take it as open 08:00-18:00 on weekdays:
  BRK-HALL-01 (Hall): idle all week at 20 W, measured from its battery.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlmodel import Session

from controller.lifecycle.models import Asset
from controller.power.models import WakeRequest
from controller.register.models import ActionRecord, ChangeRecord
from tests.controller.energy.estate import HOUR, MONDAY, bucket, device, site

FLAT = [{"name": "flat", "days": "all", "start": "00:00", "end": "00:00", "pence_per_kwh": "30"}]
WEEK = "2025-11-10..2025-11-16"
TRUST = "Vale Trust"

CALENDAR = """\
name: oakfield-2025-26
nation: england
terms:
  - {name: Autumn term, start: 2025-09-03, end: 2025-12-19, half_term: {start: 2025-10-27, end: 2025-10-31}}
  - {name: Spring term, start: 2026-01-05, end: 2026-03-27}
"""
POLICY = """\
name: oakfield
applies_to:
  sites: [Oakfield Primary]
calendar: oakfield-2025-26.yaml
school_hours:
  weekdays: "08:00-16:00"
idle:
  minutes_without_input: 20
action: shutdown
mode: force
"""


def write_policies(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "oakfield-2025-26.yaml").write_text(CALENDAR)
    (directory / "oakfield.yaml").write_text(POLICY)
    return directory


def _week_hours():
    return [MONDAY + i * HOUR for i in range(7 * 24)]


def _school_hour(hour: datetime) -> bool:
    return hour.weekday() < 5 and 8 <= hour.hour < 16


def build(session: Session) -> None:
    oak = site(session, "Oakfield Primary", tariff=FLAT, trust=TRUST, pupils=200)
    brook = site(session, "Brook Academy", tariff=FLAT, trust=TRUST)
    library = device(session, oak, "OAK-LIB-01", "laptop", "Library", serial="5CG1234ABC")
    suite = device(session, oak, "OAK-ICT-01", "laptop", "ICT Suite")
    hall = device(session, brook, "BRK-HALL-01", "laptop", "Hall")
    for hour in _week_hours():
        bucket(session, library, hour, "idle", "model", 15)
        if _school_hour(hour):
            bucket(session, suite, hour, "active", "model", 25)
        else:
            bucket(session, suite, hour, "off", "model", 0.5)
        bucket(session, hall, hour, "idle", "battery", 20)
    # The same week a year earlier, for the prior year: the library laptop idle at 15 W throughout.
    for hour in _week_hours():
        bucket(session, library, hour - timedelta(days=364), "idle", "model", 15)
    for day in range(5):
        shut = MONDAY + timedelta(days=day, hours=16)
        session.add(ActionRecord(at=shut, site_id=oak.id, device_id=suite.id, kind="shutdown", outcome="done",
                                 mode="force", reason="out of hours", actor="controller",
                                 details={"until": (shut + timedelta(hours=16)).isoformat()}))
    session.add(ActionRecord(at=MONDAY + timedelta(hours=17), site_id=oak.id, device_id=library.id, kind="shutdown",
                             outcome="skipped", mode="force", reason="user signed in", actor="controller"))
    # Two wakes of the suite: one confirmed, one failed. Each logs its steps (queued, sent, ...) as actions
    # too; the report counts each wake once, by the status it ended in.
    for day, status in ((1, "confirmed"), (2, "failed")):
        at = MONDAY + timedelta(days=day, hours=7)
        session.add(WakeRequest(site_id=oak.id, device_id=suite.id, mac="00:1a:2b:3c:4d:5e", status=status,
                                reason="wake before school", requested_by="controller", requested_at=at, due_at=at))
        for step in ("queued", "sent", status):
            session.add(ActionRecord(at=at, site_id=oak.id, device_id=suite.id, kind="wake", outcome=step,
                                     reason="wake before school", actor="controller"))
    session.add(ChangeRecord(at=datetime(2025, 11, 12, 9, 30, tzinfo=UTC), actor="user:alice", action="mode",
                             object_type="policy", object_id="oakfield", before={"mode": "observe"},
                             after={"mode": "force"}))
    # An edit of the file, as the policy store logs it: content hashes and its own one-line summary.
    session.add(ChangeRecord(at=datetime(2025, 11, 13, 18, tzinfo=UTC), actor="controller:policy-dir",
                             action="update", object_type="policy", object_id="oakfield",
                             before={"content_hash": "a1"},
                             after={"content_hash": "b2", "summary": "school_hours: 08:00-15:30 → 08:00-16:00"}))
    session.add(ChangeRecord(at=datetime(2025, 10, 1, tzinfo=UTC), actor="user:alice", action="create",
                             object_type="policy", object_id="oakfield", after={"mode": "observe"}))
    # The register: the library laptop has every DfE field, its warranty long over; the others have none.
    session.add(Asset(device_id=library.id, state="deployed", assigned_to="Library", location="Library",
                      purchase_date=date(2022, 9, 1), review_date=date(2026, 9, 1), warranty_end=date(2024, 9, 1),
                      os_end_of_support=date(2031, 10, 1)))
    session.flush()
