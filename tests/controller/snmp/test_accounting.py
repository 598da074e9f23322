"""Stored readings become metered energy: hand-computed figures, idempotent re-runs, and mapped
devices taking their share from the PDU or switch that feeds them (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import yaml
from sqlmodel import Session, select

from controller.db import session_scope
from controller.register.models import Device, EnergyBucket, Site
from controller.snmp.accounting import account
from controller.snmp.client import Kind, Value
from controller.snmp.mapping import parse_meter_map
from controller.snmp.models import SnmpMeteredHour, SnmpReading
from controller.snmp.readings import DevicePoll
from controller.snmp.store import register, save_poll
from tests.controller.snmp.conftest import address_of, poll

T0 = datetime(2026, 3, 29, 0, 50, tzinfo=UTC)  # the night the clocks go forward: UTC hours do not care
APC, ADVANTECH = "apc_ap8853", "advantech_eki-7712g-4fp"
POWER, ENERGY = "1.3.6.1.4.1.318.1.1.26.4.3.1.5.1", "1.3.6.1.4.1.318.1.1.26.4.3.1.9.1"


def store_and_account(engine, polls: list[DevicePoll], meter_map: str = "metered: []") -> int:
    """What the poll round does: save the readings, then account the hours they touch."""
    with session_scope(engine) as session:
        site = session.exec(select(Site)).first() or Site(name="Hillside")
        session.add(site)
        session.flush()
        for p in polls:
            save_poll(session, register(session, p, site, "test"), p)
        session.flush()
        account(session, min(p.at for p in polls), max(p.at for p in polls), _map(meter_map))
        return site.id


def _map(text: str):
    return parse_meter_map(yaml.safe_load(text))


def metered(engine, device_id: int) -> dict[tuple[datetime, str], tuple[float, float]]:
    with Session(engine) as session:
        rows = session.exec(select(EnergyBucket).where(EnergyBucket.device_id == device_id,
                                                       EnergyBucket.method == "metered"))
        return {(r.hour, r.state): (round(r.joules, 3), round(r.seconds, 3)) for r in rows}


def device_with_serial(engine, serial: str) -> int:
    with Session(engine) as session:
        return session.exec(select(Device.id).where(Device.serial == serial)).one()


def test_two_polls_of_a_recording_and_a_later_reading_give_the_hand_computed_energy(engine):
    store_and_account(engine, [poll(APC, T0)])
    store_and_account(engine, [poll(APC, T0 + timedelta(minutes=5))])
    later = {POWER: Value(Kind.INTEGER, 116), ENERGY: Value(Kind.INTEGER, 35131)}  # 1160 W, register +0.3 kWh
    store_and_account(engine, [poll(APC, T0 + timedelta(minutes=20), later)])
    # 00:50-00:55 at 1140 W; 00:55-01:10 at the mean 1150 W (3 register counts are too coarse to use),
    # a third of it before 01:00 and two thirds after.
    assert metered(engine, device_with_serial(engine, "ZA2001002384")) == {
        (T0.replace(minute=0), "active"): (687_000, 600),  # 1140 W × 300 s + 1150 W × 300 s
        (T0.replace(minute=0) + timedelta(hours=1), "active"): (690_000, 600),  # 1150 W × 600 s
    }


def test_storing_the_same_poll_again_and_accounting_again_adds_nothing(engine):
    polls = [poll(APC, T0), poll(APC, T0 + timedelta(minutes=5)), poll(APC, T0 + timedelta(minutes=10))]
    store_and_account(engine, polls)
    before = metered(engine, device_with_serial(engine, "ZA2001002384"))
    store_and_account(engine, polls)
    store_and_account(engine, polls[1:2])
    assert metered(engine, device_with_serial(engine, "ZA2001002384")) == before
    with Session(engine) as session:
        assert len(session.exec(select(SnmpReading)).all()) == 3
    assert sum(j for j, _ in before.values()) == 1140 * 600


def test_a_device_on_a_poe_port_gets_that_port_and_the_switch_keeps_the_rest(engine):
    with session_scope(engine) as session:
        site = Site(name="Hillside")
        session.add(site)
        session.flush()
        ap = Device(site_id=site.id, hostname="library-ap", device_class="unknown")
        session.add(ap)
        session.flush()
        session.add(EnergyBucket(device_id=ap.id, hour=T0.replace(minute=0), state="active", method="model",
                                 joules=9.0 * 600, seconds=600))
        ap_id = ap.id
    meter_map = f"metered: [{{device: hostname:library-ap, feeds: [{{address: {address_of(ADVANTECH)}, port: 4}}]}}]"
    store_and_account(engine, [poll(ADVANTECH, T0), poll(ADVANTECH, T0 + timedelta(minutes=5))], meter_map)
    with Session(engine) as session:
        switch_id = session.exec(select(Device.id).where(Device.device_class == "switch")).one()
    hour = T0.replace(minute=0)
    assert metered(engine, ap_id) == {(hour, "active"): (2670, 300)}  # port 4: 8.9 W × 300 s
    assert metered(engine, switch_id) == {(hour, "active"): (7170, 300)}  # (32.8 W − 8.9 W) × 300 s
    with Session(engine) as session:  # the agent's model estimate is left for the accounting to weigh
        assert session.get(EnergyBucket, (ap_id, hour, "active", "model")).joules == 9.0 * 600


def test_taking_a_device_out_of_the_meter_map_gives_its_energy_back_to_the_switch(engine):
    with session_scope(engine) as session:
        site = Site(name="Hillside")
        session.add(site)
        session.flush()
        session.add(Device(site_id=site.id, hostname="library-ap", device_class="unknown"))
    polls = [poll(ADVANTECH, T0), poll(ADVANTECH, T0 + timedelta(minutes=5))]
    store_and_account(engine, polls, f"metered: [{{device: hostname:library-ap, feeds: [{{address: "
                                     f"{address_of(ADVANTECH)}, port: 4}}]}}]")
    store_and_account(engine, polls)
    with Session(engine) as session:
        switch_id = session.exec(select(Device.id).where(Device.device_class == "switch")).one()
        ap_id = session.exec(select(Device.id).where(Device.hostname == "library-ap")).one()
        assert session.exec(select(SnmpMeteredHour).where(SnmpMeteredHour.device_id == ap_id)).all() == []
    assert metered(engine, ap_id) == {}  # no empty metered row hiding the model estimate
    assert metered(engine, switch_id) == {(T0.replace(minute=0), "active"): (9840, 300)}  # 32.8 W × 300 s


def test_a_whole_pdu_mapped_to_one_server_is_that_servers_and_not_the_pdus(engine):
    with session_scope(engine) as session:
        site = Site(name="Hillside")
        session.add(site)
        session.flush()
        session.add(Device(site_id=site.id, hostname="srv1", serial="CZC1234XYZ", device_class="server"))
    store_and_account(engine, [poll(APC, T0), poll(APC, T0 + timedelta(minutes=10))],
                      f"metered: [{{device: serial:CZC1234XYZ, feeds: [{{address: {address_of(APC)}}}]}}]")
    assert metered(engine, device_with_serial(engine, "CZC1234XYZ")) == {
        (T0.replace(minute=0), "active"): (684_000, 600)}  # 1140 W × 600 s
    assert metered(engine, device_with_serial(engine, "ZA2001002384")) == {}


def test_a_silence_longer_than_the_gap_is_left_unknown(engine):
    store_and_account(engine, [poll(APC, T0), poll(APC, T0 + timedelta(minutes=45))])
    assert metered(engine, device_with_serial(engine, "ZA2001002384")) == {}
