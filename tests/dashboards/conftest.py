"""A simulator-fed controller and a real Prometheus scraping it with Caretaker's rules loaded."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import pytest
from sqlmodel import select

from controller.db import make_engine, session_scope
from controller.energy.tariff import set_tariff
from controller.register.models import Site
from tests.conftest import BIN, ControllerProcess, start_controller
from tests.dashboards.promtools import RULE_FILES, running_prometheus


@pytest.fixture
def fed_controller(database_url: str, tmp_path: Path) -> Iterator[ControllerProcess]:
    """A controller whose /metrics cache lasts one scrape interval, holding a simulated estate's history,
    with a tariff at every site (without one, energy is unpriced and there is no cost to show)."""
    running = start_controller(database_url, tmp_path, env={"CARETAKER_METRICS_CACHE_SECONDS": "1"})
    try:
        subprocess.run([str(BIN / "caretaker"), "simulate", "--controller", running.url, "--devices", "10",
                        "--history", "0.1", "--duration", "0", "--database-url", database_url],
                       cwd=tmp_path, capture_output=True, text=True, check=True, timeout=120)
        engine = make_engine(database_url)
        with session_scope(engine) as session:
            for site_id in session.exec(select(Site.id)).all():
                set_tariff(session, site_id, "flat", datetime(2020, 1, 1, tzinfo=UTC),
                           [{"name": "all day", "pence_per_kwh": 30.2}])
        engine.dispose()
        yield running
    finally:
        running.stop()


@pytest.fixture
def prometheus(fed_controller: ControllerProcess, tmp_path: Path) -> Iterator[str]:
    with running_prometheus(urlparse(fed_controller.url).netloc, tmp_path, RULE_FILES) as url:
        yield url
