"""The controller polls the registered SNMP kit by itself: readings pile up round after round, a dead
target is marked without holding up the others, and metered energy reaches the buckets."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from sqlmodel import Session, col, func, select

from controller.db import make_engine
from controller.register.models import Device, EnergyBucket, Site
from controller.settings import Settings
from controller.snmp.models import SnmpReading, SnmpTarget
from controller.snmp.service import start_polling
from tests.conftest import start_controller
from tests.controller.snmp.conftest import SCHOOL, SILENT, STALE, discover


def wait_for_readings(engine, target_id: int, count: int, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with Session(engine) as session:
            if session.exec(select(func.count()).where(SnmpReading.target_id == target_id)).one() >= count:
                return
        time.sleep(0.5)
    raise AssertionError(f"fewer than {count} readings after {seconds} s")


def span(session: Session, target_id: int) -> float:
    """Seconds between the first and last stored reading: the time a metered figure covers."""
    times = session.exec(select(SnmpReading.at).where(SnmpReading.target_id == target_id)
                         .order_by(col(SnmpReading.at))).all()
    return (times[-1] - times[0]).total_seconds()


def metered_total(session: Session, device_id: int) -> tuple[float, float]:
    joules, seconds = session.exec(select(func.sum(EnergyBucket.joules), func.sum(EnergyBucket.seconds))
                                   .where(EnergyBucket.device_id == device_id, EnergyBucket.method == "metered")).one()
    return joules or 0.0, seconds or 0.0


@pytest.mark.slow  # three poll rounds of a real controller, each waiting out the silent address
def test_the_controller_polls_registered_kit_and_meters_its_energy(database_url, school_subnet, subnet_credentials,
                                                                   tmp_path: Path):
    found = {f["address"]: f for f in discover(database_url, school_subnet, subnet_credentials)}
    apc = found[school_subnet.addresses["apc_ap8853"]]
    switch = found[school_subnet.addresses["advantech_eki-7712g-4fp"]]
    engine = make_engine(database_url)
    with Session(engine) as session:
        site = session.exec(select(Site)).one()
        session.add(Device(site_id=site.id, hostname="library-ap"))
        session.add(SnmpTarget(site_id=site.id, address=SILENT, port=school_subnet.port))  # nobody answers
        session.commit()
    meters = tmp_path / "snmp-meters.yaml"
    meters.write_text(f"metered: [{{device: hostname:library-ap, feeds: [{{address: {switch['address']}, port: 4}}]}}]")
    controller = start_controller(database_url, tmp_path, env={
        "CARETAKER_SNMP_POLL_INTERVAL_SECONDS": "1", "CARETAKER_SNMP_CREDENTIALS_FILE": str(subnet_credentials),
        "CARETAKER_SNMP_METER_MAP_FILE": str(meters), "SNMP_SCHOOL": SCHOOL, "SNMP_STALE": STALE})
    try:
        wait_for_readings(engine, apc["target"], 3)
        wait_for_readings(engine, switch["target"], 3)
    finally:
        controller.stop()
    with Session(engine) as session:
        silent = session.exec(select(SnmpTarget).where(SnmpTarget.address == SILENT)).one()
        assert silent.last_ok_at is None and "no answer" in silent.last_error
        ap = session.exec(select(Device.id).where(Device.hostname == "library-ap")).one()
        # Constant recordings: energy is each load's watts over the time the readings span.
        apc_span, switch_span = span(session, apc["target"]), span(session, switch["target"])
        assert _close(metered_total(session, apc["device"]), (1140 * apc_span, apc_span))
        assert _close(metered_total(session, ap), (8.9 * switch_span, switch_span))
        assert _close(metered_total(session, switch["device"]), ((32.8 - 8.9) * switch_span, switch_span))
    assert SCHOOL not in controller.log.read_text() and STALE not in controller.log.read_text()


def _close(got: tuple[float, float], expected: tuple[float, float]) -> bool:
    return all(abs(g - e) <= 1e-6 * max(1.0, abs(e)) for g, e in zip(got, expected, strict=True)) and got[1] > 0


def test_polling_stays_off_without_credentials_or_with_a_broken_file(tmp_path: Path, caplog):
    assert start_polling(Settings(data_dir=tmp_path), engine=None) is None  # no snmp-credentials.yaml
    (tmp_path / "snmp-credentials.yaml").write_text("credentials: {ro: {version: 2c, community: public}}\n")
    with caplog.at_level(logging.ERROR):
        assert start_polling(Settings(data_dir=tmp_path), engine=None) is None
    assert "snmp polling is off: credentials.ro.community: write secrets as" in caplog.text
    assert "public" not in caplog.text
    assert start_polling(Settings(data_dir=tmp_path, snmp_poll_interval_seconds=0), engine=None) is None
