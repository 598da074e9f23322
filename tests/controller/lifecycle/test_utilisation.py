"""Utilisation and right-sizing from a user's commands, against arithmetic done by hand.

The fixture is written by hand from the protocol's documentation (not a capture): agents enroll and post
reports through the real app's agent API (its ingest fills the hourly buckets), and the figures come from
`caretaker lifecycle utilisation` and `caretaker lifecycle rightsize` as a network manager runs them.

Weeks: W1 and W2 are two consecutive whole weeks with no English bank holiday, ending at least a week
ago; no policy is loaded, so a school day is a weekday that is not a bank holiday (five a week).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session

from agent.protocol import (
    PROTOCOL_VERSION,
    Activity,
    DeviceClass,
    EnergySample,
    PowerMethod,
    PowerState,
    Report,
    ReportBatch,
    Smbios,
    to_wire,
)
from controller import migrate
from controller.api.app import create_app
from controller.db import make_engine, session_scope
from controller.policy.calendar import Nation, bank_holidays
from controller.register.enrollment import create_token
from controller.register.models import Device, Site
from controller.settings import Settings
from controller.timeutil import utcnow
from tests.conftest import BACKENDS, BIN, fresh_database
from tests.factories import enroll_json, inventory

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def _quiet_weeks() -> date:
    """The Monday of W1: two whole weeks without a bank holiday, W2 ending at least a week before today."""
    today = utcnow().date()
    monday = today - timedelta(days=today.weekday()) - timedelta(weeks=3)
    while any(monday + timedelta(days=i) in bank_holidays(Nation.ENGLAND, (monday + timedelta(days=i)).year)
              for i in range(14)):
        monday -= timedelta(weeks=1)
    return monday


W1 = _quiet_weeks()
W2 = W1 + timedelta(weeks=1)
UNTIL = W2 + timedelta(days=6)  # W2's Sunday
# Servers: four whole UTC days ending with UNTIL (the command's window is [UNTIL + 1 day - 4 days, UNTIL + 1 day)).
SERVER_DAYS = [datetime.combine(UNTIL - timedelta(days=3 - i), datetime.min.time(), UTC) for i in range(4)]


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC) + hour * HOUR


def _report(seq: int, start: datetime, seconds: float, state: PowerState, watts: float, cpu: float = 3.0,
            memory: float | None = None) -> Report:
    return Report(seq=seq, start=start, end=start + timedelta(seconds=seconds),
                  activity=Activity(state=state, cpu_percent=cpu, idle_seconds=5.0, memory_percent=memory),
                  energy=(EnergySample(PowerMethod.MODEL, state, seconds, watts * seconds, detail="model"),))


ACTIVE, IDLE = PowerState.ACTIVE, PowerState.IDLE


def _desktop_reports() -> dict[str, list[tuple[datetime, float, PowerState]]]:
    weekdays = [W1 + timedelta(days=i) for i in range(5)] + [W2 + timedelta(days=i) for i in range(5)]
    return {
        # Six hours active, 09:00-15:00, every weekday of W1 and W2; and an hour on W3's Monday, after --until.
        "HILL-ICT-01": [(_at(d, h), 3600, ACTIVE) for d in weekdays for h in range(9, 15)]
                       + [(_at(W2 + timedelta(days=7), 10), 3600, ACTIVE)],
        # An hour active on W1's Monday, four idle hours on its Tuesday, half an hour active on W2's Wednesday.
        "HILL-ICT-02": [(_at(W1, 10), 3600, ACTIVE), *[(_at(W1 + DAY, h), 3600, IDLE) for h in range(9, 13)],
                        (_at(W2 + 2 * DAY, 11), 1800, ACTIVE)],
        # First reports on W2's Wednesday: two hours active Wednesday and Thursday, one on Saturday.
        "HILL-LIB-01": [(_at(W2 + 2 * DAY, 9), 7200, ACTIVE), (_at(W2 + 3 * DAY, 9), 7200, ACTIVE),
                        (_at(W2 + 5 * DAY, 10), 3600, ACTIVE)],
    }


@dataclass(frozen=True)
class Server:
    hostname: str
    watts: float
    cpu: tuple[float, ...]
    memory: tuple[float, ...]


SERVERS = (Server("HILL-SRV-01", 100, (5, 6, 7, 8), (40, 42, 44, 46)),
           Server("HILL-SRV-02", 150, (10, 10, 10, 12), (20, 20, 20, 20)),
           Server("HILL-SRV-03", 200, (50, 60, 70, 80), (60, 60, 60, 60)))
ROOMS = {"HILL-ICT-01": "ICT Suite", "HILL-ICT-02": "ICT Suite", "HILL-LIB-01": "Library"}


def _post(client: TestClient, engine, n: int, hostname: str, device_class: DeviceClass,
          reports: list[Report]) -> None:
    with session_scope(engine) as session:
        token = create_token(session, "Hillside Primary", utcnow(), 1, "test").token
    inv = inventory(hostname=hostname, serial=f"SN-{hostname}", macs=(f"02:00:00:00:00:{n:02x}",),
                    machine_id=f"mid-{hostname}", uuid=None, device_class=device_class,
                    smbios=Smbios(vendor="Example Ltd", model="Caretaker Test Tower", serial=f"SN-{hostname}"))
    enrolled = client.post("/api/v1/agent/enroll", json=enroll_json(token, inv))
    assert enrolled.status_code == 201, enrolled.text
    body = enrolled.json()
    answer = client.post("/api/v1/agent/reports", json=to_wire(ReportBatch(PROTOCOL_VERSION, tuple(reports))),
                         headers={"Authorization": f"Bearer {body['agent_id']}:{body['secret']}"})
    assert answer.status_code == 200 and len(answer.json()["accepted"]) == len(reports), answer.text


@dataclass(frozen=True)
class Controller:
    url: str
    workdir: Path  # the commands run here: no policies/ beside them, so school days are the default weekdays

    def json(self, *args: str) -> dict:
        return json.loads(caretaker(self.url, self.workdir, *args, "--json"))


@pytest.fixture(scope="module", params=BACKENDS)
def database(request, tmp_path_factory) -> Iterator[Controller]:
    directory = tmp_path_factory.mktemp("utilisation")
    with fresh_database(request.param, directory) as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        with TestClient(create_app(Settings(data_dir=directory), engine)) as client:
            for n, (hostname, spans) in enumerate(_desktop_reports().items()):
                _post(client, engine, n, hostname, DeviceClass.DESKTOP,
                      [_report(i, start, seconds, state, 60.0) for i, (start, seconds, state) in enumerate(spans, 1)])
            for n, server in enumerate(SERVERS, start=10):
                _post(client, engine, n, server.hostname, DeviceClass.SERVER,
                      [_report(i + 1, day, 86400, IDLE, server.watts, server.cpu[i], server.memory[i])
                       for i, day in enumerate(SERVER_DAYS)])
        with Session(engine) as session:  # rooms and the trust: stand-ins for the commands of issue 11
            for hostname, room in ROOMS.items():
                session.execute(update(Device).where(Device.hostname == hostname).values(room=room))
            session.execute(update(Site).values(trust="Vale Trust"))
            session.commit()
        engine.dispose()
        workdir = directory / "cli"
        workdir.mkdir()
        caretaker(url, workdir, "energy", "tariff", "set", "--site", "Hillside Primary", "--from",
                  (W1 - timedelta(weeks=1)).isoformat(), "--band", "flat all 00:00-00:00 30")
        yield Controller(url, workdir)


def caretaker(url: str, workdir: Path, *args: str) -> str:
    done = subprocess.run([str(BIN / "caretaker"), *args, "--database-url", url], capture_output=True, text=True,
                          timeout=120, cwd=workdir)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_hours_in_use_per_school_week_rank_rooms_and_classes_and_propose_redeployment(database):
    """Hand arithmetic, two school weeks (W1, W2) of five school days each:

    HILL-ICT-01: 6 h × 10 weekdays = 60 h in use (W3's hour is after --until) ÷ 10 school days × 5 = 30.00 h.
    HILL-ICT-02: 1 h + 0.5 h in use = 1.5 h (the idle hours are not use) ÷ 10 × 5 = 0.75 h: under 2 h.
    HILL-LIB-01: first reported on W2's Wednesday, so one school week of 3 school days (Wed-Fri);
        2 + 2 + 1 h (Saturday's use counts: it is in the school week) = 5 h ÷ 3 × 5 = 8.333… = 8.33 h.
    Servers are right-sized, not listed. Rooms (means of their devices' figures): ICT Suite (30.00 + 0.75) ÷ 2
    = 15.375 = 15.38 h, Library 8.33 h. Desktops: (30.00 + 0.75 + 8.33) ÷ 3 = 13.026… = 13.03 h.
    Redeploying HILL-ICT-02 saves a new desktop's 280 kgCO2e (the shipped class figure: its model is unknown).
    """
    found = database.json("lifecycle", "utilisation", "--weeks", "2", "--until", UNTIL.isoformat())
    devices = {d["hostname"]: (d["school_weeks"], d["school_days"], d["in_use_hours"], d["hours_per_week"])
               for d in found["devices"]}
    assert devices == {"HILL-ICT-01": (2, 10, "60.00", "30.00"), "HILL-ICT-02": (2, 10, "1.50", "0.75"),
                       "HILL-LIB-01": (1, 3, "5.00", "8.33")}
    assert [(r["rank"], r["name"], r["devices"], r["hours_per_week"], r["under"]) for r in found["rooms"]] == [
        (1, "Hillside Primary / ICT Suite", 2, "15.38", 1), (2, "Hillside Primary / Library", 1, "8.33", 0)]
    assert [(c["name"], c["devices"], c["hours_per_week"]) for c in found["classes"]] == [("desktop", 3, "13.03")]
    assert [(r["hostname"], r["hours_per_week"], r["embodied_kg_co2e"], r["embodied_basis"])
            for r in found["redeploy"]] == [("HILL-ICT-02", "0.75", 280.0, "class")]
    # The threshold is the user's: under 10 h, the library PC joins (8.33 h), and the embodied carbon adds up.
    wider = database.json("lifecycle", "utilisation", "--weeks", "2", "--until", UNTIL.isoformat(),
                      "--under", "10")
    assert [r["hostname"] for r in wider["redeploy"]] == ["HILL-ICT-02", "HILL-LIB-01"]
    misspelt = subprocess.run([str(BIN / "caretaker"), "lifecycle", "utilisation", "--site", "Hilside Primary",
                               "--database-url", database.url], capture_output=True, text=True, timeout=120,
                              cwd=database.workdir)
    assert (misspelt.returncode, misspelt.stderr) == (2, "caretaker: error: no site called 'Hilside Primary'\n")


def test_under_used_servers_are_proposed_for_consolidation_with_kwh_pounds_and_carbon(database):
    """Four whole days of daily reports, 96 h, flat 30 p/kWh, defaults: 4 guests per host, 20% host overhead,
    PUE 1.5, so a candidate's 95th-percentile CPU is at most 70 ÷ (4 × 1.2) = 14.58… = 14.6%.

    SRV-01: CPU mean (5+6+7+8) ÷ 4 = 6.5%, p95 (nearest rank: the 4th of 4) 8%; memory mean 43%, p95 46%;
        100 W × 96 h = 9.6 kWh, £2.88. A candidate.
    SRV-02: CPU mean 10.5%, p95 12%; memory 20%; 150 W × 96 h = 14.4 kWh, £4.32. A candidate.
    SRV-03: CPU p95 80%: not a candidate; 200 W × 96 h = 19.2 kWh.
    Consolidating the two candidates: ceil(2 ÷ 4) = 1 host drawing 1.2 × their mean, so the hosts keep
    1 × 1.2 ÷ 2 = 0.6 of today's draw; saved at the wall: (1 - 0.6) × 1.5 = 0.6 of (9.6 + 14.4) = 24 kWh
    = 14.4 kWh, 0.6 × £7.20 = £4.32; a year: × 365 ÷ 4 = 1,314 kWh and £394.20. Their guests use
    43% × 16 GiB + 20% × 16 GiB = 10.08 = 10.1 GiB of memory.
    """
    found = database.json("lifecycle", "rightsize", "--days", "4", "--until", UNTIL.isoformat())
    servers = {s["hostname"]: s for s in found["servers"]}
    one, two, three = (servers[s.hostname] for s in SERVERS)
    assert (one["cpu_mean"], one["cpu_p95"], one["memory_mean"], one["memory_p95"]) == ("6.5", "8.0", "43.0", "46.0")
    assert (one["reported_hours"], one["mean_watts"], one["kwh"], one["pounds"]) == ("96.00", "100.0", "9.600", "2.88")
    assert (two["cpu_mean"], two["cpu_p95"], two["kwh"], two["pounds"]) == ("10.5", "12.0", "14.400", "4.32")
    assert [s["candidate"] for s in (one, two, three)] == [True, True, False]
    (plan,) = found["consolidations"]
    assert (plan["site"], plan["servers"], plan["candidates"], plan["hosts"]) == (
        "Hillside Primary", 3, ["HILL-SRV-01", "HILL-SRV-02"], 1)
    assert (plan["kwh_saved"], plan["pounds_saved"], plan["kwh_saved_per_year"], plan["pounds_saved_per_year"],
            plan["guest_memory_gib"]) == ("14.400", "4.32", "1314.000", "394.20", "10.1")
    carbon = (Decimal(one["kg_co2e"]) + Decimal(two["kg_co2e"])) * Decimal("0.6")
    assert abs(Decimal(plan["kg_co2e_saved"]) - carbon) <= Decimal("0.001") and carbon > 0
    assert "4 guests per host" in found["assumptions"] and "PUE 1.5" in found["assumptions"]
    # The assumptions are the user's: with no cooling to save (PUE 1), (1 - 0.6) × 24 kWh = 9.6 kWh, £2.88.
    plain = database.json("lifecycle", "rightsize", "--days", "4", "--until", UNTIL.isoformat(), "--pue", "1")
    assert (plain["consolidations"][0]["kwh_saved"], plain["consolidations"][0]["pounds_saved"]) == ("9.600", "2.88")


def test_the_audit_packs_value_for_money_and_servers_sections_carry_the_same_figures(database):
    """The audit pack over W1..W2's Sunday: the same school weeks, so the same hours per school week as
    the command (30.00, 0.75, 8.33); the site's mean (30.00 + 0.75 + 8.33) ÷ 3 = 13.026… h; one device to
    redeploy, saving 280 kgCO2e. Servers over the period's last 30 days (which hold all four reported
    days: energy is not attributed before a device's first report): SRV-01 9.6 kWh over 720 h = 13.3 W;
    the consolidation saves 14.4 kWh and £4.32, × 365 ÷ 30 = 175.2 kWh and £52.56 a year."""
    out = database.workdir / "audit.json"
    caretaker(database.url, database.workdir, "report", "audit", "--trust", "Vale Trust", "--period",
              f"{W1.isoformat()}..{UNTIL.isoformat()}", "--format", "json", "--out", str(out))
    pack = json.loads(out.read_text())
    (value,) = pack["value"]
    assert (value["site"], round(value["hours_per_week"], 3), value["underused"]) == ("Hillside Primary", 13.027, 1)
    assert {d["hostname"]: d["hours_per_week"] for d in pack["utilisation"]["devices"]} == {
        "HILL-ICT-01": "30.00", "HILL-ICT-02": "0.75", "HILL-LIB-01": "8.33"}
    assert [(r["hostname"], r["embodied_kg_co2e"]) for r in pack["utilisation"]["redeploy"]] == [("HILL-ICT-02", 280.0)]
    one = next(s for s in pack["servers"]["servers"] if s["hostname"] == "HILL-SRV-01")
    assert (one["kwh"], one["mean_watts"], one["cpu_p95"]) == ("9.600", "13.3", "8.0")
    (plan,) = pack["servers"]["consolidations"]
    assert (plan["kwh_saved"], plan["pounds_saved"], plan["kwh_saved_per_year"], plan["pounds_saved_per_year"]) == (
        "14.400", "4.32", "175.200", "52.56")


def test_an_impossible_memory_share_costs_only_its_report(engine, tmp_path):
    """Hostile input: 150% of memory in use cannot be; that report is refused with its reason, the next kept."""
    with TestClient(create_app(Settings(data_dir=tmp_path), engine)) as client:
        with session_scope(engine) as session:
            token = create_token(session, "Hillside Primary", utcnow(), 1, "test").token
        body = client.post("/api/v1/agent/enroll", json=enroll_json(token, inventory())).json()
        start = utcnow().replace(microsecond=0) - timedelta(hours=2)
        batch = to_wire(ReportBatch(PROTOCOL_VERSION, (_report(1, start, 300, IDLE, 40, memory=40.0),
                                                       _report(2, start + timedelta(minutes=5), 300, IDLE, 40,
                                                               memory=41.0))))
        batch["reports"][0]["activity"]["memory_percent"] = 150.0
        ack = client.post("/api/v1/agent/reports", json=batch,
                          headers={"Authorization": f"Bearer {body['agent_id']}:{body['secret']}"}).json()
    assert ack["accepted"] == [2] and [r["seq"] for r in ack["rejected"]] == [1]
    assert "memory_percent must be between 0 and 100" in ack["rejected"][0]["reason"]
