"""`caretaker demo` (what `./demo` runs) brings up a working estate and takes it all down on Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import psutil
import pytest

from tests.conftest import BIN, free_port

pytestmark = pytest.mark.slow


def devices(data_dir) -> list[dict]:
    result = subprocess.run([str(BIN / "caretaker"), "devices", "--json", "--data-dir", str(data_dir)],
                            capture_output=True, text=True, timeout=60)
    return json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else []


def test_the_demo_shows_an_estate_and_stops_cleanly(tmp_path):
    data_dir = tmp_path / "demo"
    demo = subprocess.Popen([str(BIN / "caretaker"), "demo", "--data-dir", str(data_dir), "--port", str(free_port()),
                             "--devices", "24", "--sites", "2", "--history", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while len(devices(data_dir)) < 25 and time.monotonic() < deadline:
            assert demo.poll() is None, demo.stdout.read()
            time.sleep(1)
        children = psutil.Process(demo.pid).children(recursive=True)
    finally:
        demo.send_signal(signal.SIGINT)
        output, _ = demo.communicate(timeout=60)

    listed = devices(data_dir)
    assert len(listed) == 25, output  # 24 simulated and this machine
    assert {d["site"] for d in listed} >= {"Demo Office"}
    assert any(d["conflict_with"] for d in listed), "the simulated estate includes a cloned image"
    assert "Press Ctrl-C" in output and "Stopping" in output
    password = data_dir / "console-password"
    assert f"password in {password}" in output and password.stat().st_mode & 0o077 == 0
    users = subprocess.run([str(BIN / "caretaker"), "user", "list", "--json", "--data-dir", str(data_dir)],
                           capture_output=True, text=True, timeout=60)
    assert [(u["name"], u["role"]) for u in json.loads(users.stdout)] == [("demo", "network_manager")]
    assert (data_dir / "policies" / "primary.yaml").is_file()
    assert demo.returncode == 0
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
