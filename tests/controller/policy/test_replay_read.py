"""What `policy simulate` and the console's Review switch read from the database (controller.policy.replay):
only the reports that can change a replay, and the rest counted. The simulation must be the one every
stored report gives, as it is and with a policy switched, on SQLite and PostgreSQL.

Fixture: the example week of test_simulate.py (made here from the example policies and calendars in
policies/, not recorded from an estate), written to the database as ingest stores reports.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy
from sqlmodel import Session

from controller.policy.model import Mode
from controller.policy.replay import estate, period, projected_impact
from controller.policy.simulate import PROBE, Simulation, simulate
from controller.policy.store import PolicyStore
from controller.register.models import Agent, Device, Report, Site
from controller.storage import partitions
from tests.conftest import REPO
from tests.controller.policy.builders import local
from tests.controller.policy.test_simulate import WEEK, example_week

START, END = WEEK
SWITCHED = {"hillside-primary": Mode.FORCE}


def stored_week(engine: sqlalchemy.Engine, change=lambda report: report) -> list:
    """The example week's devices and reports (each passed through ``change``) in the database; returns the
    reports, with the stored ids."""
    _, devices, reports = example_week(START, END)
    reports = [change(r) for r in reports]
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
        assert_same_figures(read.replay(modes), every)
        assert_same_figures(projected, every)
    assert now.actions and after.saved_kwh > now.saved_kwh
    assert len(read.decisive) < sum(r.state in ("active", "idle") for r in stored)
    assert sum(read.quiet.values()) + len(read.decisive) + sum(t.reports for t in read.tails) == len(stored)
    assert now.observations == len(stored)


# A power-down override in the half term's Monday night, with its own action: the out-of-hours window, the
# override's and the out-of-hours window again, back to back (a report straddles each edge).
OVERRIDE = """  overrides:
    - {name: Deep clean, effect: power_down, action: sleep, sites: [Hillside Primary],
       start: 2026-02-16 19:00, expires: 2026-02-17 06:00}
"""
BUSY = "5"  # stored id of a Hillside laptop left on at night: kept busy into the override's night


def busy_in_the_override(report):
    """``BUSY``'s reports in use from 18:00 to 23:00 that Monday: it stays awake through the first hour of
    the override's window, so the replay must judge the rest of it report by report."""
    if report.device_id == str(int(BUSY) - 1) and local("2026-02-16 18:00") <= report.end < local("2026-02-16 23:00"):
        return report._replace(cpu_percent=60.0, idle_seconds=30.0)
    return report


def test_summing_windows_past_their_first_hour_gives_the_figures_of_every_report(engine, tmp_path):
    """What the read sums in SQL (each power-down window past its first hour, controller.policy.simulate.Tail)
    must add up to what the replay of every report saves: across back-to-back windows with different actions,
    for a device that stays awake through a window's first hour, as it is and switched."""
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    primary = tmp_path / "policies" / "primary.yaml"
    primary.write_text(primary.read_text().replace("exceptions:\n", "exceptions:\n" + OVERRIDE))
    stored = stored_week(engine, busy_in_the_override)
    active = PolicyStore(tmp_path / "policies", engine).current()
    with Session(engine) as session:
        facts, residual = estate(session, active)
        read = period(session, active, START, END, variants=(None, SWITCHED))
    for modes in (None, SWITCHED):
        every = simulate(active.policies, active.calendars, facts, stored, residual, START, END, modes)
        assert_same_figures(read.replay(modes), every)
    now = read.replay()
    assert {"shutdown/observe", "sleep/observe"} <= set(now.actions)  # both sides of the override's edges
    night = local("2026-02-16 19:00") + PROBE, local("2026-02-17 06:00")
    summed = {t.device_id for t in read.tails if (t.start, t.until) == night}
    judged = {o.device_id for o in read.decisive if night[0] <= o.start and o.end < night[1]}
    assert BUSY in judged and BUSY not in summed and len(summed) > 1
    assert sum(read.quiet.values()) + len(read.decisive) + sum(t.reports for t in read.tails) == len(stored)


def assert_same_figures(got: Simulation, expected: Simulation) -> None:
    """The same simulation, kWh to within float rounding: what SQL sums comes out in another order, and
    ``policy simulate`` shows a device's kWh to three places."""
    assert replace(got, saved_kwh=0.0, observe_kwh=0.0, per_device=()) == replace(
        expected, saved_kwh=0.0, observe_kwh=0.0, per_device=())
    assert [(d.device_id, d.actions, f"{d.saved_kwh:.3f}", f"{d.observe_kwh:.3f}") for d in got.per_device] == [
        (d.device_id, d.actions, f"{d.saved_kwh:.3f}", f"{d.observe_kwh:.3f}") for d in expected.per_device]
    for field in ("saved_kwh", "observe_kwh"):
        assert [getattr(d, field) for d in got.per_device] == pytest.approx(
            [getattr(d, field) for d in expected.per_device], rel=1e-9, abs=1e-9)
        assert getattr(got, field) == pytest.approx(getattr(expected, field), rel=1e-9)
