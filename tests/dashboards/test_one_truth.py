"""One estate, one answer: `caretaker energy summary`, /api/v1/energy/summary, /metrics after a real
Prometheus scrape and the bursar report's CSV give the same kWh, £ and kgCO2e.

The estate has every method: a desktop on an outlet meter whose agent also reported the same hour (the
meter wins it), a server on RAPL, a laptop on its battery, a desktop on its model, and silence attributed
after each stops reporting. Its days are three days ago, so every hour of them has settled.

Two questions, each asked of three surfaces: all history up to the last settled hour (the CLI, the API
and /metrics, whose counters are all-history), and the report's whole days (the CLI, the API and the
bursar CSV). Figures are compared as every surface writes them: kWh and kgCO2e to 1 dp, £ to the penny.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
import zipfile
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from controller import formatting as fmt
from controller import migrate
from controller.db import make_engine
from controller.estate.summary import settled_until
from controller.settings import Settings
from controller.timeutil import utcnow
from tests.conftest import BIN, start_controller
from tests.controller.energy.estate import bucket, device, site
from tests.dashboards.promtools import query, running_prometheus

FLAT = [{"name": "flat", "days": "all", "start": "00:00", "end": "00:00", "pence_per_kwh": "30"}]


def caretaker(*args: str, database_url: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "caretaker"), *args, "--database-url", database_url], capture_output=True,
                          text=True, timeout=120)


def build(database_url: str) -> datetime:
    """The estate; returns midnight UTC of its first day (three days ago)."""
    first = (utcnow() - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    with Session(engine) as session:
        oak = site(session, "Oakfield Primary", tariff=FLAT, timezone="UTC")
        metered = device(session, oak, "OAK-OFF-PC01", "desktop", "Office")
        server = device(session, oak, "OAK-SRV01", "server", "Comms")
        laptop = device(session, oak, "OAK-LT01", "laptop", "Library")
        model = device(session, oak, "OAK-PC02", "desktop", "ICT 1")
        for h in range(8, 16):
            hour = first + timedelta(hours=h)
            bucket(session, metered, hour, "active", "metered", 65)
            bucket(session, metered, hour, "active", "model", 80)  # the agent's row for the same hour: ignored
            bucket(session, server, hour, "active", "rapl", 40)
            bucket(session, laptop, hour, "idle", "battery", 12, 1800)  # half an hour, then silence
            bucket(session, model, hour, "idle", "model", 50)
        session.commit()
    engine.dispose()
    return first


def figures(kwh: object, pounds: object, kg: object) -> tuple[Decimal, Decimal | None, Decimal]:
    return fmt.kwh(Decimal(str(kwh))), fmt.pounds(None if pounds is None else Decimal(str(pounds))), \
        fmt.kg(Decimal(str(kg)))


def cli_total(database_url: str, start: str, end: str) -> tuple:
    result = caretaker("energy", "summary", "--from", start, "--to", end, "--by", "estate", "--json",
                       database_url=database_url)
    assert result.returncode == 0, result.stderr
    total = json.loads(result.stdout)["total"]
    assert total["kwh_by_method"].keys() == {"metered", "rapl", "battery", "model", "attributed"}
    return figures(total["kwh"], total["cost_gbp"], total["kgco2e"])


def api_total(url: str, token: str, start: str, end: str) -> tuple:
    answer = httpx.get(f"{url}/api/v1/energy/summary", params={"from": start, "to": end, "by": "estate"},
                       headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert answer.status_code == 200, answer.text
    total = answer.json()["total"]
    return figures(total["kwh"], total["cost_gbp"], total["kgco2e"])


def prometheus_total(prometheus: str) -> tuple | None:
    values = []
    for name in ("caretaker_energy_joules_total", "caretaker_cost_pence_total", "caretaker_carbon_grams_total"):
        result = query(prometheus, f'sum({name}{{job="caretaker"}})')["result"]
        if not result:
            return None
        values.append(Decimal(result[0]["value"][1]))
    joules, pence, grams = values
    return figures(joules / Decimal(3_600_000), pence / 100, grams / 1000)


@pytest.mark.slow
def test_every_surface_gives_the_same_kwh_pounds_and_carbon(database_url: str, tmp_path: Path):
    first = build(database_url)
    token = caretaker("apitoken", "create", "one-truth", "--role", "bursar", database_url=database_url)
    assert token.returncode == 0, token.stderr
    bearer = token.stdout.strip().split()[-1]
    running = start_controller(database_url, tmp_path, env={"CARETAKER_METRICS_CACHE_SECONDS": "1",
                                                            "CARETAKER_METRICS_HISTORY_SECONDS": "1"})
    try:
        # All history up to the last settled hour: what the counters hold.
        with running_prometheus(running.url.removeprefix("http://"), tmp_path) as prometheus:
            deadline, seen, wanted = time.monotonic() + 30, None, None
            while time.monotonic() < deadline:
                settled = settled_until(utcnow(), Settings().report_interval_seconds)
                start, end = first.isoformat(), settled.isoformat()
                wanted = cli_total(database_url, start, end)
                seen = prometheus_total(prometheus)
                if seen == wanted and settled == settled_until(utcnow(), Settings().report_interval_seconds):
                    break
                time.sleep(0.5)
            assert seen == wanted
            assert api_total(running.url, bearer, start, end) == wanted
        # The report's whole days: the day the estate reported and the next, silence attributed in them.
        days = f"{first.date().isoformat()}..{(first + timedelta(days=1)).date().isoformat()}"
        end_day = (first + timedelta(days=1)).date().isoformat()
        wanted = cli_total(database_url, first.date().isoformat(), end_day)
        assert api_total(running.url, bearer, first.date().isoformat(), end_day) == wanted
        out = tmp_path / "bursar.zip"
        report = caretaker("report", "bursar", "--site", "Oakfield Primary", "--period", days, "--format", "csv",
                           "--out", str(out), "--policies", str(tmp_path / "none"), database_url=database_url)
        assert report.returncode == 0, report.stderr
        rows = list(csv.DictReader(io.StringIO(zipfile.ZipFile(out).read("summary.csv").decode("utf-8-sig"))))
        used = next(r for r in rows if r["Figure"] == "Used")
        assert (Decimal(used["kWh"]), Decimal(used["£"]), Decimal(used["kgCO2e"])) == wanted
        # The metered desktop's hours count the meter's 65 W, never its agent's 80 W as well.
        office = caretaker("energy", "summary", "--from", first.isoformat(),
                           "--to", (first + timedelta(hours=16)).isoformat(), "--by", "device", "--json",
                           database_url=database_url)
        row = next(r for r in json.loads(office.stdout)["rows"] if r["key"].endswith("OAK-OFF-PC01"))
        assert Decimal(row["kwh_by_method"]["metered"]) == Decimal("0.520")  # 8 h × 65 W
        assert Decimal(row["kwh_by_method"].get("model", "0")) == 0
    finally:
        running.stop()
