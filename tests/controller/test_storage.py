"""Retention, partitions and singleton jobs, from the controller's ingest and the `caretaker db` commands.

Reports come in through the real ingest route; retention runs through the real CLI (`caretaker db
prune`, its settings from the environment as an operator sets them); figures come from energy_totals.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from controller.api.app import create_app
from controller.db import make_engine
from controller.energy.accounting import energy_summary
from controller.jobs.models import JobRun
from controller.jobs.singleton import Job, Outcome, run_once
from controller.register.models import Report
from controller.settings import Settings
from controller.storage import partitions
from controller.timeutil import utcnow
from tests.controller.test_agent_api import REPORTS, enrolled
from tests.factories import batch_json, report

BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"
NOW = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
AGES = (150, 120, 95, 91, 89, 60, 10, 1)  # days ago each report starts


@pytest.fixture
def client(engine: Engine, tmp_path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, report_retention_days=200, rollup_every_seconds=0,
                        retention_every_seconds=0)
    with TestClient(create_app(settings, engine)) as client:
        yield client


def caretaker(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "caretaker"), *args, "--database-url", database_url], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


def starts(engine: Engine) -> list[datetime]:
    with Session(engine) as session:
        return sorted(session.exec(select(Report.start)).all())


def test_retention_drops_old_reports_and_no_energy_with_them(client, engine, database_url):
    auth = enrolled(client, engine)
    sent = [report(i + 1, NOW - timedelta(days=age), seconds=600, watts=40.0 + i) for i, age in enumerate(AGES)]
    answer = client.post(REPORTS, json=batch_json(sent), headers=auth)
    assert answer.json()["accepted"] == list(range(1, len(AGES) + 1)), answer.text
    with Session(engine) as session:
        before = energy_summary(session, NOW - timedelta(days=160), NOW, now=NOW).to_json()
    assert before["total"]["kwh"] != "0.000"

    done = caretaker(database_url, "db", "prune", CARETAKER_REPORT_RETENTION_DAYS="90")
    assert done.returncode == 0, done.stderr

    cutoff = datetime.combine(utcnow().date() - timedelta(days=90), datetime.min.time(), UTC)
    kept = starts(engine)
    assert kept == [r.start for r in sent if r.start >= cutoff]  # nothing newer than the retention lost
    assert len(kept) == 4
    with Session(engine) as session:
        assert energy_summary(session, NOW - timedelta(days=160), NOW, now=NOW).to_json() == before
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            assert min(partitions.existing(connection)) >= cutoff.date()


def test_ingest_refuses_a_report_older_than_the_retention(engine, tmp_path):
    settings = Settings(data_dir=tmp_path, report_retention_days=30, rollup_every_seconds=0)
    with TestClient(create_app(settings, engine)) as client:
        auth = enrolled(client, engine)
        answer = client.post(REPORTS, json=batch_json([report(1, NOW - timedelta(days=31)),
                                                       report(2, NOW - timedelta(days=29))]), headers=auth)
    body = answer.json()
    assert body["accepted"] == [2]
    assert [(r["seq"], "more than 30 days ago" in r["reason"]) for r in body["rejected"]] == [(1, True)]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # partitions are PostgreSQL's
def test_partitions_are_made_ahead_and_back_to_the_retention(engine, tmp_path, database_url):
    settings = Settings(data_dir=tmp_path, report_retention_days=20, rollup_every_seconds=0)
    with TestClient(create_app(settings, engine)):
        pass
    today = utcnow().date()
    with engine.connect() as connection:
        days = set(partitions.existing(connection))
    assert {today + timedelta(days=d) for d in range(-20, partitions.AHEAD_DAYS + 1)} <= days
    made = caretaker(database_url, "db", "partitions", CARETAKER_REPORT_RETENTION_DAYS="40")
    assert made.returncode == 0, made.stderr
    with engine.connect() as connection:
        assert min(partitions.existing(connection)) == today - timedelta(days=40)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # an SQLite controller is alone
def test_a_singleton_job_runs_on_one_replica_at_a_time(engine, database_url):
    other = make_engine(database_url)  # a second replica: its own connections, the same database
    inside, release = threading.Event(), threading.Event()

    def slow(session, now):
        inside.set()
        assert release.wait(30)
        return {"slow": True}

    first: list[Outcome] = []
    job = Job("test-job", 1, slow)
    worker = threading.Thread(target=lambda: first.append(run_once(engine, job, holder="replica-a")))
    worker.start()
    assert inside.wait(30)
    assert run_once(other, Job("test-job", 1, lambda s, n: {}), holder="replica-b") is Outcome.SKIPPED
    release.set()
    worker.join(30)
    assert first == [Outcome.DONE]
    assert run_once(other, Job("test-job", 1, lambda s, n: {"second": True}), holder="replica-b") is Outcome.DONE
    other.dispose()
    with Session(engine) as session:
        runs = session.exec(select(JobRun).order_by(JobRun.started_at)).all()
    assert [(r.holder, r.outcome) for r in runs] == [("replica-a", "done"), ("replica-b", "done")]
    assert runs[0].finished_at <= runs[1].started_at


def test_db_stats_counts_rows_and_growth_per_day(client, engine, database_url):
    auth = enrolled(client, engine)
    client.post(REPORTS, json=batch_json([report(i + 1, NOW - timedelta(days=age)) for i, age in enumerate(AGES)]),
                headers=auth)
    shown = caretaker(database_url, "db", "stats", "--json", "--table", "report", "--table", "energybucket")
    assert shown.returncode == 0, shown.stderr
    found = {row["table"]: row for row in json.loads(shown.stdout)}
    with Session(engine) as session:
        reports = session.exec(select(func.count()).select_from(Report)).one()
    assert found["report"]["rows"] == reports == len(AGES)
    assert found["report"]["rows_per_day"] == pytest.approx(1 / 7)  # one report in the last 7 whole days
    assert found["report"]["bytes"] is None or found["report"]["bytes"] > 0
