"""A real Prometheus scrapes a real controller fed by the simulator, and sees the energy the energy package counts.

Needs the ``prometheus`` binary (tests/dashboards/promtools.py: skipped without it locally, fatal in CI).
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from controller.db import make_engine
from controller.energy.accounting import energy_totals
from controller.estate.summary import settled_until
from controller.register.models import EnergyBucket
from controller.settings import Settings
from controller.timeutil import as_utc, utcnow
from tests.conftest import ControllerProcess
from tests.dashboards.promtools import query


def counted_joules(database_url: str) -> float:
    """The energy package's total over the settled hours /metrics counts (controller.estate.summary)."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            first = session.exec(select(func.min(EnergyBucket.hour))).one()
            settled = settled_until(utcnow(), Settings().report_interval_seconds)
            return float(energy_totals(session, as_utc(first), settled, ("estate",), now=settled).total.wh) * 3600
    finally:
        engine.dispose()


@pytest.mark.slow
def test_prometheus_scrapes_the_energy_the_energy_package_counts(prometheus: str, fed_controller: ControllerProcess):
    expected = counted_joules(fed_controller.database_url)
    assert expected > 0, "the simulator stored no energy"

    seen: float | None = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        expected = counted_joules(fed_controller.database_url)  # an hour may settle meanwhile
        result = query(prometheus, 'sum(caretaker_energy_joules_total{job="caretaker"})')["result"]
        if result:
            seen = float(result[0]["value"][1])
            if seen == pytest.approx(expected, rel=1e-9):
                break
        time.sleep(0.5)

    assert seen == pytest.approx(expected, rel=1e-9)
    (up,) = query(prometheus, 'up{job="caretaker"}')["result"]
    assert up["value"][1] == "1"
    devices = query(prometheus, 'sum(caretaker_devices{job="caretaker"})')["result"]
    assert float(devices[0]["value"][1]) == 10
