"""Queries over every device of a trust: more devices than one SQL statement may name (PostgreSQL stops at
65,535 bind parameters, SQLite at 32,766) must still answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlmodel import Session

from controller.energy.inputs import CALIBRATION_MIN_SECONDS, measured_watts
from controller.policy.replay import observations
from controller.policy.simulate import Reading
from controller.register.models import Device, EnergyBucket, Site

MANY = 70_000


def test_calibration_reads_measured_watts_for_more_devices_than_one_statement_can_name(engine):
    with Session(engine) as session:
        site = Site(name="Trust-wide")
        session.add(site)
        session.flush()
        server = Device(site_id=site.id, hostname="SRV01", device_class="server")
        session.add(server)
        session.flush()
        seconds = CALIBRATION_MIN_SECONDS
        session.add(EnergyBucket(device_id=server.id, hour=datetime(2026, 1, 5, 9, tzinfo=UTC), state="idle",
                                 method="metered", joules=85.0 * seconds, seconds=seconds))
        session.commit()
        ids = [server.id, *range(server.id + 1, server.id + MANY)]

        assert measured_watts(session, ids, Decimal("1.54")) == {server.id: {"idle": Decimal("85")}}
        start = datetime(2026, 1, 5, tzinfo=UTC)
        every_report = Reading(((None, None),), ())
        assert observations(session, dict.fromkeys(map(str, ids), every_report), start, start + timedelta(days=1)) == []
