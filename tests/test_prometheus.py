"""A real Prometheus scrapes a real controller fed by the simulator, and sees the energy the register holds.

Needs the ``prometheus`` binary (Debian package ``prometheus``; CI installs it with
.ci/setup-prometheus.sh). Skipped without it locally; in CI (CI set) its absence fails the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from controller.db import make_engine
from controller.models import EnergyBucket
from tests.conftest import BIN, ControllerProcess, free_port, start_controller


def _prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("the prometheus binary is missing; CI must run .ci/setup-prometheus.sh")
        pytest.skip("the prometheus binary is not installed (apt-get install prometheus)")
    return binary


@pytest.fixture
def fed_controller(database_url: str, tmp_path: Path) -> Iterator[ControllerProcess]:
    """A controller whose /metrics cache lasts one scrape interval, holding a simulated estate's history."""
    running = start_controller(database_url, tmp_path, env={"CARETAKER_METRICS_CACHE_SECONDS": "1"})
    try:
        subprocess.run([str(BIN / "caretaker"), "simulate", "--controller", running.url, "--devices", "10",
                        "--history", "0.1", "--duration", "0", "--database-url", database_url],
                       cwd=tmp_path, capture_output=True, text=True, check=True, timeout=120)
        yield running
    finally:
        running.stop()


@pytest.fixture
def prometheus(fed_controller: ControllerProcess, tmp_path: Path) -> Iterator[str]:
    binary = _prometheus_binary()
    target = urlparse(fed_controller.url).netloc
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: caretaker
    static_configs:
      - targets: ["{target}"]
""")
    port = free_port()
    log = tmp_path / "prometheus.log"
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"], stdout=log.open("ab"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def query(prometheus: str, promql: str) -> list[dict]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def stored_joules(database_url: str) -> float:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return float(session.exec(select(func.coalesce(func.sum(EnergyBucket.joules), 0.0))).one())
    finally:
        engine.dispose()


@pytest.mark.slow
def test_prometheus_scrapes_the_energy_the_register_holds(prometheus: str, fed_controller: ControllerProcess):
    expected = stored_joules(fed_controller.database_url)
    assert expected > 0, "the simulator stored no energy"

    seen: float | None = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        result = query(prometheus, 'sum(caretaker_energy_joules_total{job="caretaker"})')
        if result:
            seen = float(result[0]["value"][1])
            if seen == pytest.approx(expected, rel=1e-9):
                break
        time.sleep(0.5)

    assert seen == pytest.approx(expected, rel=1e-9)
    (up,) = query(prometheus, 'up{job="caretaker"}')
    assert up["value"][1] == "1"
    devices = query(prometheus, 'sum(caretaker_devices{job="caretaker"})')
    assert float(devices[0]["value"][1]) == 10
