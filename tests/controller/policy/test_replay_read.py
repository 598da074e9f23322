"""What `policy simulate` and the console's Review switch read from the database (controller.policy.replay):
only the reports that can change a replay, and the rest counted. The simulation must be the one every
stored report gives, as it is and with a policy switched, on SQLite and PostgreSQL.

Fixture: the example week of test_simulate.py (made here from the example policies and calendars in
policies/, not recorded from an estate), written to the database as ingest stores reports.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy
from sqlmodel import Session

from controller.policy.model import Mode
from controller.policy.replay import estate, period, projected_impact
from controller.policy.simulate import simulate
from controller.policy.store import PolicyStore
from controller.register.models import Agent, Device, Report, Site
from controller.storage import partitions
from tests.conftest import REPO
from tests.controller.policy.test_simulate import WEEK, example_week

START, END = WEEK
SWITCHED = {"hillside-primary": Mode.FORCE}


def stored_week(engine: sqlalchemy.Engine) -> list:
    """The example week's devices and reports in the database; returns the reports, with the stored ids."""
    _, devices, reports = example_week(START, END)
    sites = sorted({d.site for d in devices})
    first = START - timedelta(days=1)
    with engine.begin() as connection:
        if partitions.partitioned(connection):
            partitions.ensure(connection, END, (END - START).days + 2)
        connection.execute(sqlalchemy.insert(Site.__table__), [
            {"id": n, "name": name, "timezone": "Europe/London", "created_at": first}
            for n, name in enumerate(sites, 1)])
        connection.execute(sqlalchemy.insert(Device.__table__), [
            {"id": int(d.device_id) + 1, "site_id": sites.index(d.site) + 1, "hostname": d.hostname,
             "device_class": d.device_class, "room": d.group, "tags": list(d.tags) or None, "first_seen": first}
            for d in devices])
        connection.execute(sqlalchemy.insert(Agent.__table__), [
            {"id": f"a{int(d.device_id) + 1:031d}", "device_id": int(d.device_id) + 1,
             "site_id": sites.index(d.site) + 1, "secret_hash": "0" * 64, "enrolled_at": first, "last_seq": 0,
             "reports": 0} for d in devices])
        stored = [r._replace(device_id=str(int(r.device_id) + 1)) for r in reports]
        connection.execute(sqlalchemy.insert(Report.__table__), [
            {"agent_id": f"a{int(r.device_id):031d}", "seq": seq, "device_id": int(r.device_id), "start": r.start,
             "end": r.end, "state": r.state, "idle_seconds": r.idle_seconds, "cpu_percent": r.cpu_percent,
             "sessions": r.sessions, "joules": r.joules, "slept_seconds": r.slept_seconds,
             "method": "model" if r.joules is not None else None,
             "processes_watched": list(r.processes_watched) or None,
             "processes_running": list(r.processes_running) or None, "received_at": r.end}
            for seq, r in enumerate(stored, 1)])
    return stored


def test_the_replay_reads_part_of_the_week_and_answers_as_every_report_would(engine):
    stored = stored_week(engine)
    active = PolicyStore(REPO / "policies", engine).current()
    with Session(engine) as session:
        facts, residual = estate(session, active)
        read = period(session, active, START, END, variants=(None, SWITCHED))
        now, after = projected_impact(session, active, "hillside-primary", Mode.FORCE, START, END)
    for modes, projected in ((None, now), (SWITCHED, after)):
        every = simulate(active.policies, active.calendars, facts, stored, residual, START, END, modes)
        assert read.replay(modes) == every == projected
    assert now.actions and after.saved_kwh > now.saved_kwh
    assert len(read.decisive) < sum(r.state in ("active", "idle") for r in stored)
    assert sum(read.quiet.values()) + len(read.decisive) == len(stored) == now.observations
