"""`caretaker demo` (what `./demo` runs) builds its history, then says Running, and SIGTERM takes it all down.

A small demo (24 simulated devices on two sites, three days: one observing, two enforcing) against its
own controller: when it prints "Running" the history is in, the policies enforced after their
baseline, so `caretaker energy savings` claims something, priced at the demo's day/night tariff, and the
bursar PDF says so with its basis. The schools' trust, pupils and postcodes (demodata/sites.yaml) are in, so
the trust's audit pack has intensity per pupil; and the config file the demo writes is all a `caretaker`
command in another terminal needs to find the demo's database.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import date, timedelta

import psutil
from pypdf import PdfReader

from tests.conftest import BIN, free_port


def caretaker(data_dir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "caretaker"), *args, "--data-dir", str(data_dir)], capture_output=True,
                          text=True, timeout=120)


def test_the_demo_says_running_once_its_history_is_in_and_stops_every_process_on_sigterm(tmp_path):
    data_dir = tmp_path / "demo"
    demo = subprocess.Popen([str(BIN / "caretaker"), "demo", "--data-dir", str(data_dir), "--port", str(free_port()),
                             "--devices", "24", "--sites", "2", "--history", "3", "--observe-days", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = ""
    began = time.monotonic()
    try:
        deadline = time.monotonic() + 240
        for line in demo.stdout:
            output += line
            if line.startswith("Running.") or time.monotonic() > deadline:
                break
        assert "Running." in output, output
        assert "Described the schools: 2 sites of Vale Learning Trust; tariff 'demo day/night' for 2 sites" in output
        print(f"Running after {time.monotonic() - began:.1f} s")
        today = date.today()
        period = f"{today - timedelta(days=3)}..{today}"
        savings = caretaker(data_dir, "energy", "savings", "--from", str(today - timedelta(days=3)), "--to",
                            str(today), "--json")
        assert savings.returncode == 0, savings.stderr
        saved = json.loads(savings.stdout)
        assert float(saved["saved_kwh"]) > 0  # the history was in when it said Running
        assert float(saved["saved_gbp"]) > 0  # at the demo's day/night tariff (demodata/tariff.yaml)
        modes = {p["name"]: p["mode"] for p in json.loads(caretaker(data_dir, "policy", "list", "--json").stdout)}
        assert modes["hillside-primary"] == "warn" and modes["northgate-academy"] == "warn"
        listed = json.loads(caretaker(data_dir, "devices", "--json").stdout)
        assert len([d for d in listed if d["site"] != "Demo Office"]) == 24
        pdf = tmp_path / "bursar.pdf"
        report = caretaker(data_dir, "report", "bursar", "--site", "Northgate Academy", "--period", period,
                           "--format", "pdf", "--out", str(pdf))
        assert report.returncode == 0, report.stderr
        text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(pdf).pages)
        assert "Power management saved" in text and "Power management saved 0.0 kWh" not in text
        pack = tmp_path / "audit.json"
        audit = subprocess.run([str(BIN / "caretaker"), "report", "audit", "--trust", "Vale Learning Trust",
                                "--period", period, "--format", "json", "--out", str(pack)], capture_output=True,
                               text=True, timeout=120, cwd=tmp_path,
                               env={**os.environ, "CARETAKER_CONFIG": str(data_dir / "caretaker.toml")})
        assert audit.returncode == 0, audit.stderr
        secr = json.loads(pack.read_text())["secr"]
        assert len(secr) == 2 and all(s["pupils"] and s["kwh_per_pupil"] > 0 for s in secr), secr
        children = psutil.Process(demo.pid).children(recursive=True)
        assert len(children) >= 3  # the controller, this machine's agent and the live simulation
    finally:
        demo.send_signal(signal.SIGTERM)
        rest, _ = demo.communicate(timeout=60)
        output += rest
    assert "Stopping" in output
    assert demo.returncode == 0
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    password = data_dir / "console-password"
    assert f"password in {password}" in output and password.stat().st_mode & 0o077 == 0
    users = caretaker(data_dir, "user", "list", "--json")
    assert [(u["name"], u["role"]) for u in json.loads(users.stdout)] == [("demo", "network_manager")]
