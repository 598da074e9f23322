"""Controller replicas behind a real HAProxy, configured by the caretaker_balancer role's template.

Three real `caretaker serve` processes share one PostgreSQL database; HAProxy (Debian's package) runs
in the foreground on loopback with the configuration the role writes; `caretaker simulate` drives 2,000
virtual agents through it. Mid-run one replica is killed (SIGKILL) and another restarted. Then:

- every report the simulator had acknowledged is stored exactly once, and nothing else is;
- the singleton jobs' run rows (rollup, retention, partitions every second here) never overlap;
- a machine enrolling again through one replica retires its old credential, which every replica
  refuses within a minute.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import defaultdict
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, select

from agent.protocol import PROTOCOL_VERSION, EnrollRequest, to_wire
from controller.db import session_scope
from controller.jobs.models import JobRun
from controller.register.enrollment import create_token
from controller.register.models import Report
from controller.simulate.estate import SitePlan, build_estate
from controller.timeutil import utcnow
from tests.ansible import balancer
from tests.ansible.conftest import Ansible, unavailable
from tests.conftest import BIN, ControllerProcess, free_port, start_controller
from tests.factories import batch_json, report

DEVICES = 2000
JOBS_EVERY = {"CARETAKER_ROLLUP_EVERY_SECONDS": "1", "CARETAKER_RETENTION_EVERY_SECONDS": "1",
              "CARETAKER_PARTITIONS_EVERY_SECONDS": "1"}


def haproxy(ansible: Ansible, replicas: list[str], port: int, workdir: Path) -> subprocess.Popen:
    if not Path(balancer.HAPROXY).exists():
        unavailable("haproxy is not installed (.ci/setup-haproxy.sh installs Debian's package)")
    return balancer.start(balancer.render(ansible, replicas, port, workdir, check_interval="500ms"), port, workdir)


def wait_for_line(process: subprocess.Popen, needle: str, seconds: float, seen: list[str]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return
    raise AssertionError(f"no {needle!r} from the simulator: {''.join(seen)[-2000:]}")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # replicas share PostgreSQL
def test_replicas_behind_haproxy_store_each_report_once_and_share_singletons_and_revocations(
        ansible, engine, database_url, tmp_path):
    replicas: list[ControllerProcess] = [start_controller(database_url, tmp_path, env=JOBS_EVERY) for _ in range(3)]
    ports = [int(r.url.rsplit(":", 1)[1]) for r in replicas]
    front = free_port()
    balancer = haproxy(ansible, [f"127.0.0.1:{p}" for p in ports], front, tmp_path)
    state = tmp_path / "simulate.json"
    try:
        simulator = subprocess.Popen(
            [str(BIN / "caretaker"), "simulate", "--controller", f"http://127.0.0.1:{front}", "--devices",
             str(DEVICES), "--sites", "2", "--interval", "10", "--duration", "15", "--concurrency", "24",
             "--state", str(state), "--database-url", database_url],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen: list[str] = []
        wait_for_line(simulator, "enrolled", 180, seen)
        time.sleep(4)
        killed = replicas[0]
        os.kill(killed.process.pid, signal.SIGKILL)  # mid-run, batches in flight on it
        killed.process.wait()
        time.sleep(2)
        replicas[1].stop()
        replicas[1] = start_controller(database_url, tmp_path, port=ports[1], env=JOBS_EVERY)
        out, _ = simulator.communicate(timeout=240)
        seen.append(out)
        assert simulator.returncode == 0, "".join(seen)[-3000:]

        acknowledged = {a["agent_id"]: a["next_seq"] - 1 for a in json.loads(state.read_text())["agents"].values()}
        # Off PCs do not report; hundreds of reports at least went through the kill and the restart (how many
        # more depends on the machine's load: 808 at load 12, over 2,000 when quiet).
        assert len(acknowledged) == DEVICES and sum(acknowledged.values()) > 400
        with Session(engine) as session:
            stored = defaultdict(list)
            for agent_id, seq in session.exec(select(Report.agent_id, Report.seq)):
                stored[agent_id].append(seq)
        assert {a: sorted(s) for a, s in stored.items() if s} == {
            a: list(range(1, n + 1)) for a, n in acknowledged.items() if n}

        time.sleep(2)  # the jobs keep turning on the live replicas
        with Session(engine) as session:
            runs = session.exec(select(JobRun).order_by(col(JobRun.job), col(JobRun.started_at))).all()
        by_job = defaultdict(list)
        for run in runs:
            by_job[run.job].append(run)
        assert {"rollup", "retention", "partitions"} <= set(by_job)
        holders = {run.holder for run in runs}
        assert len(holders) >= 2  # the jobs moved: the replicas took turns, and one came back
        for job, of_job in by_job.items():
            for earlier, later in pairwise(of_job):
                if earlier.finished_at is None:  # only a run the kill cut short is left unfinished
                    assert earlier.holder.endswith(f":{killed.process.pid}"), (job, earlier.holder)
                    continue
                assert earlier.finished_at <= later.started_at, (job, earlier, later)

        check_revocation(engine, replicas[1:], state)
    finally:
        balancer.terminate()
        balancer.wait(timeout=10)
        for replica in replicas:
            replica.stop()


def check_revocation(engine, live: list[ControllerProcess], state: Path) -> None:
    """A machine enrolls again through one replica: its old credential is refused by every replica."""
    saved = json.loads(state.read_text())
    hostname, record = next(iter(saved["agents"].items()))
    old = {"Authorization": f"Bearer {record['agent_id']}:{record['secret']}"}
    for replica in live:  # each replica has the old credential cached, as a working agent's would be
        answer = httpx.post(f"{replica.url}/api/v1/agent/reports", headers=old, timeout=10,
                            json=batch_json([report(10_000_000 + live.index(replica),
                                                    utcnow().replace(microsecond=0) - timedelta(minutes=30))]))
        assert answer.status_code == 200, answer.text
    sites = [SitePlan(**s) for s in saved["sites"]]
    device = next(d for d in build_estate(sites, saved["seed"]) if d.hostname == hostname)
    with session_scope(engine) as session:
        token = create_token(session, record["site"], utcnow(), 1, "test").token
    enrolled = httpx.post(f"{live[-1].url}/api/v1/agent/enroll", timeout=10,
                          json=to_wire(EnrollRequest(PROTOCOL_VERSION, token, device.inventory())))
    assert enrolled.status_code == 201, enrolled.text
    retired_at = time.monotonic()
    refused: dict[str, float] = {}
    last: dict[str, str] = {}  # what each replica last answered, for the failure message
    while len(refused) < len(live) and time.monotonic() - retired_at < 60:
        for replica in live:
            if replica.url in refused:
                continue
            answer = httpx.post(f"{replica.url}/api/v1/agent/reports", headers=old, timeout=10,
                                json=batch_json([report(20_000_000, utcnow().replace(microsecond=0))]))
            if answer.status_code == 401:
                refused[replica.url] = time.monotonic() - retired_at
            last[replica.url] = f"{answer.status_code} {answer.text[:300]}"
        time.sleep(1)
    assert set(refused) == {r.url for r in live}, (refused, last)
    assert max(refused.values()) < 60
