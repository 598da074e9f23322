"""A real Prometheus scrapes a real controller fed by the simulator, and sees the energy the register holds.

Needs the ``prometheus`` binary (tests/dashboards/promtools.py: skipped without it locally, fatal in CI).
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from controller.db import make_engine
from controller.register.models import EnergyBucket
from tests.conftest import ControllerProcess
from tests.dashboards.promtools import query


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
