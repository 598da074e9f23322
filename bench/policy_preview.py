"""Policy previews while the manager waits: `caretaker policy simulate` and the console's "Review switch".

Targets (issue 17): the impact preview for a 300-device site in at most 2 s; `policy simulate` of a week
for 300 devices in at most 3 s (10,000 devices: at most 30 s).

    .venv/bin/python bench/policy_preview.py [--devices 300] [--days 7] [--database-url URL]

The estate is written straight into a fresh database (SQLite in a temporary directory unless
``--database-url`` names an empty PostgreSQL database), as ingest leaves it: ``--devices`` desktops at
Hillside Primary (the example policies in policies/ name it; the hillside-primary policy observes) in a
few rooms, an agent each, and a report every 5 minutes for ``--days`` days: awake in school hours, and
one device in four left on (idle) each evening and night, the waste a policy would find.

Timed, with the real functions the CLI and the console call:

* simulate: ``controller.policy.replay.replay`` for the site over the days (what `policy simulate
  --site` runs);
* preview: ``controller.web.policy_impact.impact`` switching hillside-primary to force over the last
  7 days (what the console's Review switch page runs: the estate replayed as it is and as it would be);
* peer: a plain SQL sum of the same reports' joules and seconds (what reading them costs at the least).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy
from sqlmodel import Session, func, select

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from controller import migrate  # noqa: E402
from controller.db import make_engine  # noqa: E402
from controller.policy.model import Mode  # noqa: E402
from controller.policy.replay import replay  # noqa: E402
from controller.policy.store import PolicyStore  # noqa: E402
from controller.register.models import Agent, Device, Report, Site  # noqa: E402
from controller.storage import partitions  # noqa: E402
from controller.web.policy_impact import impact  # noqa: E402

SITE = "Hillside Primary"
POLICY = "hillside-primary"
ROOMS = ("ICT Suite 1", "ICT Suite 2", "Library", "Classrooms", "Office")
CHUNK = 20_000
WATTS = 45.0


def build(engine: sqlalchemy.Engine, devices: int, days: int, end: datetime) -> int:
    """The estate and its reports; returns the reports written."""
    start = end - timedelta(days=days)
    with engine.begin() as c:
        c.execute(sqlalchemy.insert(Site.__table__), [{"id": 1, "name": SITE, "timezone": "Europe/London",
                                                       "created_at": start}])
        c.execute(sqlalchemy.insert(Device.__table__), [
            {"id": n, "site_id": 1, "hostname": f"HP{n:05d}", "device_class": "desktop", "room": ROOMS[n % len(ROOMS)],
             "first_seen": start, "last_seen": end} for n in range(1, devices + 1)])
        c.execute(sqlalchemy.insert(Agent.__table__), [
            {"id": f"a{n:031d}", "device_id": n, "site_id": 1, "secret_hash": "0" * 64, "enrolled_at": start,
             "last_seq": 0, "reports": 0} for n in range(1, devices + 1)])
        written, batch = 0, []
        for n in range(1, devices + 1):
            at = start + timedelta(seconds=(n * 7) % 300)
            seq = 0
            while at + timedelta(minutes=5) <= end:
                seq += 1
                batch.append(_report(n, seq, at))
                at += timedelta(minutes=5)
                if len(batch) == CHUNK:
                    c.execute(sqlalchemy.insert(Report.__table__), batch)
                    written, batch = written + len(batch), []
        if batch:
            c.execute(sqlalchemy.insert(Report.__table__), batch)
            written += len(batch)
    return written


def _report(n: int, seq: int, at: datetime) -> dict:
    local_hour = (at.hour + 0) % 24  # UTC is London time in winter
    day = at.weekday() < 5 and 8 <= local_hour < 17
    left_on = n % 4 == 0
    state = ("active" if local_hour % 3 else "idle") if day else ("idle" if left_on else "off")
    awake = state in ("active", "idle")
    return {"agent_id": f"a{n:031d}", "seq": seq, "device_id": n, "start": at, "end": at + timedelta(minutes=5),
            "state": state, "cpu_percent": 20.0 if state == "active" else 2.0,
            "idle_seconds": 30.0 if state == "active" else 3600.0, "sessions": 1 if state == "active" else 0,
            "slept_seconds": 0.0, "method": "model" if awake else None, "joules": WATTS * 300 if awake else None,
            "received_at": at + timedelta(minutes=5)}


def timed(action):
    """(wall seconds, CPU seconds of this process, result): on a shared machine the CPU time is the figure
    to read (SQLite works in the process, so its CPU counts)."""
    started, cpu = time.perf_counter(), time.process_time()
    result = action()
    return (time.perf_counter() - started, time.process_time() - cpu), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=300)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--database-url", default="", help="an empty PostgreSQL database (default: temp SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="caretaker-bench-preview-") as tmp:
        engine = make_engine(args.database_url or f"sqlite:///{tmp}/caretaker.db")
        migrate.upgrade(engine)
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(days=args.days)
        if engine.dialect.name == "postgresql":
            with engine.begin() as connection:
                partitions.ensure(connection, end, args.days + 1)
        (built, _), reports = timed(lambda: build(engine, args.devices, args.days, end))
        if engine.dialect.name == "postgresql":
            with engine.begin() as connection:
                connection.execute(sqlalchemy.text("ANALYZE"))
        print(f"estate: {engine.dialect.name}, {args.devices:,} devices, {reports:,} reports over {args.days} days, "
              f"written in {built:.1f} s; load average {os.getloadavg()[0]:.2f}")
        store = PolicyStore(REPO / "policies", engine)
        active = store.current()
        with Session(engine) as session:
            simulated, result = timed(lambda: replay(session, active, start, end, SITE))
            previewed, shown = timed(lambda: impact(session, active, POLICY, Mode.FORCE, end))
            peer, summed = timed(lambda: session.exec(select(func.sum(Report.joules), func.count()).where(
                Report.end > start, Report.start < end)).one())
        engine.dispose()
    print(f"simulate: {result.devices} devices, {result.observations:,} reports, actions {dict(result.actions)}, "
          f"saved {result.saved_kwh:.3f} kWh, observe {result.observe_kwh:.3f} kWh")
    print(f"preview: {shown.devices} devices, {shown.extra_kwh:.3f} kWh more a week in force "
          f"(now {shown.now.saved_kwh:.3f}, after {shown.after.saved_kwh:.3f})")
    print(f"peer: {summed[1]:,} reports, {float(summed[0] or 0) / 3.6e6:.1f} kWh")
    print(f"{'':28} {'wall s':>8} {'CPU s':>8} {'wall / peer':>12}")
    for label, (wall, cpu) in ((f"policy simulate ({args.days} days)", simulated),
                               ("preview (Review switch)", previewed), ("peer: plain SQL sum", peer)):
        print(f"{label:28} {wall:8.2f} {cpu:8.2f} {wall / peer[0]:11.0f}x")
    simulate_target = 3.0 if args.devices <= 300 else 30.0 * args.devices / 10_000
    print(f"targets: simulate <= {simulate_target:g} s: {'met' if simulated[0] <= simulate_target else 'NOT met'}; "
          f"preview <= 2 s: {'met' if previewed[0] <= 2.0 else 'NOT met'}; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
