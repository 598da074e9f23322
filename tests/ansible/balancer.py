"""HAProxy in front of controller replicas on loopback, configured by the caretaker_balancer role's own
template (rendered by Ansible, as the role would write it) and run in the foreground.

Used by the replica test (tests/ansible/test_replicas.py) and the ingest benchmark's ``--replicas`` mode
(bench/ingest.py), so both measure the configuration a trust deploys.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from tests.ansible.conftest import Ansible

HERE = Path(__file__).parent
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def render(ansible: Ansible, servers: list[str], port: int, workdir: Path, check_interval: str | None = None,
           max_connections: int = 2000) -> Path:
    """The role's haproxy.cfg for ``servers`` (host:port, plain HTTP) behind 127.0.0.1:``port``, checked
    by HAProxy itself; ``check_interval`` None keeps the role's default."""
    overrides: dict[str, object] = {
        "caretaker_balancer_servers": servers, "caretaker_balancer_port": port,
        "caretaker_balancer_bind": "127.0.0.1", "caretaker_balancer_tls": False,
        "caretaker_balancer_max_connections": max_connections}
    if check_interval is not None:
        overrides["caretaker_balancer_check_interval"] = check_interval
    result = ansible.run("ansible-playbook", "-i", "localhost,", str(HERE / "render-balancer.yml"),
                         "-e", f"out={workdir}", "-e", json.dumps(overrides))
    if result.returncode != 0:
        raise RuntimeError(f"rendering the balancer's configuration failed: {result.stdout}{result.stderr}")
    config = workdir / "haproxy.cfg"
    check = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"HAProxy refuses the rendered configuration: {check.stdout}{check.stderr}")
    return config


def start(config: Path, port: int, workdir: Path) -> subprocess.Popen:
    """HAProxy in the foreground with ``config``, once it passes /healthz to a replica (its log in ``workdir``)."""
    log = (workdir / "haproxy.log").open("ab")
    process = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("HAProxy did not pass requests to a replica")
