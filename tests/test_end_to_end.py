"""The real agent process against the real controller process, over verified HTTPS, on both backends.

What a school relies on: the agent enrolls once, reports this machine truthfully, and no report is lost
or counted twice when the controller goes away or the agent is killed mid-delivery.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from agent.spool import Spool
from controller import tls
from controller.db import make_engine
from controller.register.models import EnergyBucket
from controller.register.models import Report as ReportRow
from tests.conftest import BIN, ControllerProcess, free_port, start_controller
from tests.factories import report

pytestmark = pytest.mark.slow
FAST = {"CARETAKER_REPORT_INTERVAL_SECONDS": "1"}


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca, ca_key = tls.create_ca(directory, "Test school CA")
    cert, key = tls.issue_server_certificate(ca, ca_key, ["127.0.0.1", "localhost"], directory)
    return Pki(ca, cert, key)


@pytest.fixture
def https_controller(database_url: str, tmp_path: Path, pki: Pki) -> Iterator[ControllerProcess]:
    running = start_controller(database_url, tmp_path, tls=(pki.cert, pki.key, pki.ca), env=FAST)
    yield running
    running.stop()


def wait_for(condition: Callable[[], bool], seconds: float = 45.0, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


class AgentProcess:
    """`caretaker-agent run` with its own state directory; restartable like a service."""

    def __init__(self, controller_url: str, pki: Pki, state: Path, token: str, batch_size: int = 50):
        self.args = [str(BIN / "caretaker-agent"), "run", "--controller", controller_url, "--token", token,
                     "--ca-file", str(pki.ca), "--state-dir", str(state), "--interval", "1",
                     "--session-address", str(state.parent / "session.sock"),
                     "--batch-size", str(batch_size)]
        self.state = state
        self.log = state.parent / "agent.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.args, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=20)

    def spool(self) -> tuple[int, int]:
        """(reports pending, highest seq ever reserved)."""
        with Spool(self.state / "spool.sqlite3", max_bytes=1 << 30) as spool:
            stats = spool.stats()
        return stats.pending, stats.last_seq

    def pending_seqs(self) -> list[int]:
        with Spool(self.state / "spool.sqlite3", max_bytes=1 << 30) as spool:
            return [seq for seq, _ in spool.oldest(1_000_000)]


def token_for(controller: ControllerProcess, site: str = "Hillside Primary") -> str:
    return controller.cli("token", "create", "--site", site).stdout.strip()


def stored_seqs(database_url: str) -> list[int]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return sorted(session.exec(select(ReportRow.seq)).all())
    finally:
        engine.dispose()


def accounted_seconds(database_url: str) -> tuple[float, float]:
    """(seconds in energy buckets, seconds covered by stored reports): equal unless double counted."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            bucketed = session.exec(select(func.sum(EnergyBucket.seconds))).one() or 0.0
            rows = session.exec(select(ReportRow.start, ReportRow.end, ReportRow.slept_seconds)).all()
    finally:
        engine.dispose()
    return bucketed, sum((end - start).total_seconds() for start, end, _ in rows)


def assert_each_interval_once(agent: AgentProcess, database_url: str, kills: int = 0) -> list[int]:
    """Every seq the agent reserved is stored once at the controller or still spooled; none is both.

    The agent may stop with the report of its last second still spooled. A SIGKILL between reserving
    a seq and spooling its report leaves that seq unused (a gap by design, never a reuse), so each
    kill may cost at most one seq, and nothing else may be missing.
    """
    _, last = agent.spool()
    seqs = stored_seqs(database_url)
    still_spooled = agent.pending_seqs()
    assert not set(seqs) & set(still_spooled), "a delivered report was kept in the spool"
    assert len(still_spooled) <= 1
    accounted = seqs + still_spooled
    assert len(set(accounted)) == len(accounted)
    missing = set(range(seqs[0], last + 1)) - set(accounted)
    assert len(missing) <= kills, f"reports lost: {sorted(missing)}"
    bucketed, covered = accounted_seconds(database_url)
    assert bucketed == pytest.approx(covered, rel=1e-6)
    return seqs


def test_the_agent_enrolls_and_reports_this_machine_truthfully(https_controller, pki, tmp_path):
    agent = AgentProcess(https_controller.url, pki, tmp_path / "agent", token_for(https_controller))
    agent.start()
    try:
        wait_for(lambda: len(stored_seqs(https_controller.database_url)) >= 3, what="three reports")
    finally:
        agent.stop()

    credentials = agent.state / "credentials.json"
    assert credentials.stat().st_mode & 0o777 == 0o600
    (device,) = json.loads(https_controller.cli("devices", "--json").stdout)
    assert device["hostname"] == socket.gethostname()
    assert device["site"] == "Hillside Primary"
    detail = json.loads(https_controller.cli("device", "show", str(device["id"]), "--json").stdout)
    inventory = detail["inventory"]
    assert inventory["memory_bytes"] == psutil.virtual_memory().total
    assert inventory["cpu"]["threads"] == psutil.cpu_count()
    physical = {n["mac"] for n in inventory["nics"]}
    assert set(detail["macs"]) <= physical
    assert detail["energy_last_24h"], "energy arrived in hourly buckets"
    assert {e["method"] for e in detail["energy_last_24h"]} <= {"model", "rapl", "battery"}
    secret = json.loads(credentials.read_text())["secret"]
    assert secret not in agent.log.read_text() and secret not in https_controller.log.read_text()
    assert_each_interval_once(agent, https_controller.database_url)


def test_nothing_is_lost_or_doubled_when_the_controller_stops_mid_run(database_url, pki, tmp_path):
    port = free_port()
    controller = start_controller(database_url, tmp_path, port=port, tls=(pki.cert, pki.key, pki.ca), env=FAST)
    agent = AgentProcess(controller.url, pki, tmp_path / "agent", token_for(controller))
    agent.start()
    try:
        wait_for(lambda: len(stored_seqs(database_url)) >= 2, what="first reports")
        controller.kill()  # no goodbye: as when the server loses power
        before = len(stored_seqs(database_url))
        wait_for(lambda: agent.spool()[0] >= 4, what="a backlog while the controller is down")
        controller = start_controller(database_url, tmp_path, port=port, tls=(pki.cert, pki.key, pki.ca), env=FAST)
        wait_for(lambda: agent.spool()[0] == 0 and len(stored_seqs(database_url)) >= before + 4,
                 what="the backlog to drain")
    finally:
        agent.stop()
        controller.stop()
    seqs = assert_each_interval_once(agent, database_url)
    assert len(seqs) >= before + 4


def spool_a_backlog(agent: AgentProcess, count: int) -> None:
    """What a week without the controller leaves in the spool: ``count`` five-minute reports."""
    start = datetime.now(UTC) - timedelta(minutes=5 * count + 5)
    with Spool(agent.state / "spool.sqlite3", max_bytes=1 << 30) as spool:
        for i in range(count):
            spool.put(report(spool.reserve_seq(), start=start + timedelta(minutes=5 * i)))


def test_nothing_is_lost_or_doubled_when_the_agent_is_killed_mid_batch(database_url, pki, tmp_path):
    controller = start_controller(database_url, tmp_path, tls=(pki.cert, pki.key, pki.ca), env=FAST)
    agent = AgentProcess(controller.url, pki, tmp_path / "agent", token_for(controller), batch_size=1)
    try:
        agent.start()
        wait_for(lambda: len(stored_seqs(database_url)) >= 1, what="enrolment")
        agent.stop()
        spool_a_backlog(agent, 2000)
        agent.start()
        # One report per request: kill the agent part-way through the backlog, mid-conversation.
        wait_for(lambda: len(stored_seqs(database_url)) >= 300, what="delivery to begin")
        agent.stop(signal.SIGKILL)
        assert agent.spool()[0] > 0, "killed before the backlog was delivered"
        agent.start()
        wait_for(lambda: agent.spool()[0] == 0, seconds=120, what="the rest of the backlog")
    finally:
        agent.stop()
        controller.stop()
    assert len(assert_each_interval_once(agent, database_url, kills=1)) >= 2000


def test_the_agent_refuses_a_controller_it_cannot_verify(https_controller, tmp_path):
    other = tls.create_ca(tmp_path / "other", "Somebody else's CA")[0]
    result = subprocess.run([str(BIN / "caretaker-agent"), "once", "--controller", https_controller.url,
                             "--token", token_for(https_controller), "--ca-file", str(other),
                             "--state-dir", str(tmp_path / "agent")],
                            capture_output=True, text=True, timeout=60, env={**os.environ})
    assert result.returncode == 1
    assert "certificate" in result.stderr.lower()
    assert json.loads(https_controller.cli("devices", "--json").stdout) == []
