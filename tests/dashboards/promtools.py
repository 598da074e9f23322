"""The Prometheus programs the dashboard tests run: found on PATH, skipped locally without them, fatal in CI.

Debian's ``prometheus`` package brings both ``prometheus`` and ``promtool``; CI installs it with
.ci/setup-prometheus.sh.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "dashboards" / "prometheus"
RULE_FILES = (RULES_DIR / "rules.yml", RULES_DIR / "alerts.yml")


def program(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing; CI must run .ci/setup-prometheus.sh")
        pytest.skip(f"{name} is not installed (apt-get install prometheus)")
    return path


@contextmanager
def running_prometheus(target: str, workdir: Path, rule_files: tuple[Path, ...] = ()) -> Iterator[str]:
    """A Prometheus scraping ``target`` (host:port) every second and evaluating ``rule_files`` as often."""
    binary = program("prometheus")
    rules = "".join(f"\n  - {path}" for path in rule_files)
    config = workdir / "prometheus.yml"
    config.write_text(f"""\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:{rules or " []"}
scrape_configs:
  - job_name: caretaker
    static_configs:
      - targets: ["{target}"]
""")
    port = free_port()
    log = workdir / "prometheus.log"
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
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


def query(prometheus: str, promql: str, **params: str) -> dict:
    """The API's data for an instant query (or a range query when ``start``/``end``/``step`` are given)."""
    endpoint = "query_range" if "step" in params else "query"
    answer = httpx.get(f"{prometheus}/api/v1/{endpoint}", params={"query": promql, **params}, timeout=10).json()
    assert answer["status"] == "success", answer
    return answer["data"]
