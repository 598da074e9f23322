"""Faults during a 200-device simulation on the real protocol: the controller killed with SIGKILL, then its
PostgreSQL stopped for 30 seconds.

What a trust relies on: every report a virtual agent saw acknowledged is stored exactly once; while the
database is away agents get 503 with Retry-After (not 500s), /healthz stays up and /readyz says not
ready; the log does not fill with the same error; and when the database comes back the controller
carries on without a restart.

The database is a private PostgreSQL cluster (initdb + pg_ctl in a temporary directory, on a free port),
never the machine's shared server, which other work uses.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from controller.db import make_engine
from controller.register.models import Agent, EnergyBucket
from controller.register.models import Report as ReportRow
from tests.conftest import BIN, free_port, start_controller

OUTAGE_SECONDS = 30


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are missing; CI installs postgresql")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    return Path(found[-1]).parent


class PrivateCluster:
    """A throwaway PostgreSQL cluster owned by the postgres user, so it can be stopped without touching
    anyone else's database."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.home = Path(tempfile.mkdtemp(prefix="caretaker-pg-"))
        self.data = self.home / "data"
        self.port = free_port()
        shutil.chown(self.home, "postgres", "postgres")
        self._as_postgres(self.bin / "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str | Path) -> None:
        command = [str(a) for a in args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._as_postgres(self.bin / "pg_ctl", "-D", self.data, "-l", self.home / "postgres.log", "-w", "-o",
                          f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1", "start")

    def stop(self) -> None:
        self._as_postgres(self.bin / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    private = PrivateCluster(_postgres_bin())
    private.start()
    yield private
    private.remove()


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def status(url: str, path: str, **kwargs) -> tuple[int, httpx.Headers]:
    try:
        answer = httpx.request(kwargs.pop("method", "GET"), url + path, timeout=15, **kwargs)
    except httpx.HTTPError:
        return 0, httpx.Headers()
    return answer.status_code, answer.headers


def test_acknowledged_reports_survive_a_kill_and_a_database_outage_exactly_once(cluster, tmp_path):
    port = free_port()
    controller = start_controller(cluster.url, tmp_path, port=port)
    state = tmp_path / "simulate.json"
    simulation = subprocess.Popen(
        [str(BIN / "caretaker"), "simulate", "--controller", controller.url, "--database-url", cluster.url,
         "--state", str(state), "--devices", "200", "--sites", "2", "--interval", "10", "--duration", "70"],
        stdout=(tmp_path / "simulate.log").open("w"), stderr=subprocess.STDOUT)
    try:
        engine = make_engine(cluster.url)

        def stored() -> int:
            with Session(engine) as session:
                return session.exec(select(func.count()).select_from(ReportRow)).one()

        wait_for(lambda: stored() >= 100, 60, "the estate to enroll and report")
        controller.kill()  # SIGKILL mid-stream: batches in flight are lost or stored unanswered
        before = stored()
        time.sleep(2)
        controller = start_controller(cluster.url, tmp_path, port=port)
        wait_for(lambda: stored() >= before + 50, 60, "reporting to resume after the kill")
        engine.dispose()

        cluster.stop()
        down_at = time.monotonic()
        probe = {"method": "POST", "json": {"protocol_version": 1, "reports": []},
                 "headers": {"Authorization": "Bearer not-cached:secret"}}
        answered, headers = status(controller.url, "/api/v1/agent/reports", **probe)
        assert answered == 503 and int(headers["retry-after"]) > 0
        assert status(controller.url, "/healthz")[0] == 200
        assert status(controller.url, "/readyz")[0] == 503
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
        cluster.start()
        wait_for(lambda: status(controller.url, "/readyz")[0] == 200, 60, "readiness after the database returned")
        assert simulation.wait(timeout=120) == 0
    finally:
        if simulation.poll() is None:
            simulation.kill()
        controller.stop()

    summary = (tmp_path / "simulate.log").read_text()
    assert "errors 0" not in summary.splitlines()[-1], "the faults were felt by the agents"
    records = json.loads(state.read_text())["agents"]
    engine = make_engine(cluster.url)
    with Session(engine) as session:
        seqs: dict[str, set[int]] = {}
        for agent_id, seq in session.exec(select(ReportRow.agent_id, ReportRow.seq)):
            seqs.setdefault(agent_id, set()).add(seq)
        agents = len(session.exec(select(Agent)).all())
        bucketed = session.exec(select(func.sum(EnergyBucket.seconds))).one()
        covered = sum((end - start).total_seconds() for start, end in session.exec(select(ReportRow.start,
                                                                                          ReportRow.end)))
    engine.dispose()
    assert agents == len(records) == 200
    acknowledged = 0
    for record in records.values():
        acked = set(range(1, record["next_seq"]))
        assert acked <= seqs.get(record["agent_id"], set()), f"acknowledged reports lost for {record['agent_id']}"
        acknowledged += len(acked)
    assert acknowledged >= 200
    assert bucketed == pytest.approx(covered, rel=1e-6), "a report's energy was counted twice (or not at all)"
    # One repeated error is logged once a minute with a count, not once per request (a component that logs
    # its traceback, like the wake dispatcher, does so once).
    log = controller.log.read_text()
    assert log.count("database unavailable") + log.count("the database cannot take reports") <= 6
    assert log.count("Traceback (most recent call last)") <= 6 and len(log) < 64_000, log[-3000:]
    assert "recovered after" in log
