"""The SNMP register: a device is registered once however often it is found, and each poll's
reading and status are kept (on SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from controller.db import session_scope
from controller.register.models import ChangeRecord, Device, Site
from controller.snmp.models import SnmpReading, SnmpTarget
from controller.snmp.store import list_targets, register, remembered_credentials, save_poll
from tests.controller.snmp.conftest import poll

T0 = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def keep(engine, *polls):
    with session_scope(engine) as session:
        site = session.exec(select(Site)).first() or Site(name="Hillside")
        session.add(site)
        session.flush()
        return [save_poll(session, register(session, p, site, "cli"), p) for p in polls]


def test_a_printer_is_registered_as_a_printer_device_with_its_identity(engine):
    keep(engine, poll("sharp", T0))
    with Session(engine) as session:
        device = session.exec(select(Device)).one()
        target = session.exec(select(SnmpTarget)).one()
        reading = session.exec(select(SnmpReading)).one()
        created = session.exec(select(ChangeRecord).where(ChangeRecord.object_type == "device")).one()
    assert (device.device_class, device.serial, device.last_seen) == ("printer", "6509415X00", T0)
    assert (target.device_id, target.kind, target.credential) == (device.id, "printer", "sharp-ro")
    assert target.last_ok_at == T0
    assert (reading.page_count, reading.watts) == (121104, None)
    assert {s["name"]: s["percent"] for s in reading.supplies}["Black Toner"] == 34
    assert created.actor == "cli" and created.after["serial"] == "6509415X00"


def test_finding_a_device_again_registers_nothing_new(engine):
    assert keep(engine, poll("apc_ap8853", T0)) == [True]
    assert keep(engine, poll("apc_ap8853", T0)) == [False]  # the same poll, saved again
    assert keep(engine, poll("apc_ap8853", T0 + timedelta(minutes=5))) == [True]
    with Session(engine) as session:
        assert len(session.exec(select(Device)).all()) == 1
        assert len(session.exec(select(SnmpTarget)).all()) == 1
        assert len(session.exec(select(SnmpReading)).all()) == 2


def test_a_device_that_moved_address_is_the_same_device_by_its_serial(engine):
    moved = dataclasses.replace(poll("apc_ap8853", T0), address="10.20.5.99")
    keep(engine, poll("apc_ap8853", T0), moved)
    with Session(engine) as session:
        devices = session.exec(select(Device)).all()
        assert len(devices) == 1
        assert {t.device_id for t in session.exec(select(SnmpTarget))} == {devices[0].id}


def test_a_device_without_a_serial_is_found_again_by_its_target(engine):
    keep(engine, poll("sentry4", T0))
    keep(engine, poll("sentry4", T0 + timedelta(minutes=5)))
    with Session(engine) as session:
        assert len(session.exec(select(Device)).all()) == 1


def test_a_failed_poll_keeps_the_last_good_one_and_says_why(engine):
    keep(engine, poll("konica_c250i", T0))
    failed = dataclasses.replace(poll("konica_c250i", T0 + timedelta(minutes=5)), error="no answer within 2 s")
    with session_scope(engine) as session:
        target = session.exec(select(SnmpTarget)).one()
        assert save_poll(session, target, failed) is False
        (line,) = list_targets(session)
    assert (line.last_ok_at, line.last_poll_at, line.last_error) == (T0, T0 + timedelta(minutes=5),
                                                                     "no answer within 2 s")
    assert remembered_credentials([target]).recall(target.address) == "konica_c250i-ro"
