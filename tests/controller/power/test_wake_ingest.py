"""The wake side of ingest, through the real IngestWriter and WakeService on both backends: a relay's
reply carries its orders and a shorter report interval, its next report marks them sent, and the
woken device's first report confirms the wake, all in ingest's own transaction."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from agent.protocol import PROTOCOL_VERSION, Activity, PowerState, Report, ReportBatch
from controller.power.models import WakeRequest
from controller.power.service import WakeService
from controller.power.wake import WakeConfig, request_wakes
from controller.register.ingest import AgentIdentity, IngestWriter
from controller.settings import Settings
from controller.timeutil import utcnow
from tests.controller.power import builders


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, int]] = []

    def send(self, mac: str, address: str, port: int) -> None:
        self.sent.append((mac, address, port))


_previous_end = [utcnow() - timedelta(seconds=30)]


def batch(seq: int, relayed: tuple[int, ...] = ()) -> ReportBatch:
    """A report up to now from where the last one ended: an agent's intervals never overlap."""
    start, end = _previous_end[0], utcnow()
    _previous_end[0] = end
    return ReportBatch(PROTOCOL_VERSION, (Report(seq=seq, start=start, end=end,
                                                 activity=Activity(PowerState.IDLE, 2.0), relayed_wakes=relayed),))


def test_a_relay_gets_its_orders_reports_them_sent_and_the_device_confirms_by_reporting(engine, database_url,
                                                                                      tmp_path: Path):
    with Session(engine) as session:
        hill = builders.site(session)
        relay_pc = builders.device(session, hill, "SRV1", "00:00:00:00:00:aa", "10.40.0.2", 24, device_class="server")
        target = builders.device(session, hill, "PC1", "00:1a:2b:3c:4d:5e", "10.40.0.77", 24)
        builders.agent(session, relay_pc, "relay-1", utcnow())
        builders.agent(session, target, "target-1", utcnow() - timedelta(hours=9))
        request_wakes(session, [target], "before school", "cli", utcnow(), WakeConfig())
        session.commit()
        relay = AgentIdentity("relay-1", relay_pc.id, hill.id)
        woken = AgentIdentity("target-1", target.id, hill.id)
    settings = Settings(database_url=database_url, data_dir=tmp_path, wake_local_networks=["198.51.100.0/24"],
                        relay_report_interval_seconds=60)
    recorder = Recorder()
    service = WakeService(engine, settings, sender=recorder, awaiting_refresh_seconds=0)
    writer = IngestWriter(engine, 300, wake=service)
    writer.start()
    try:
        assert service.tick().handed_to_relays == 1 and recorder.sent == []  # not on-link: the relay's job
        ack = writer.submit(relay, batch(2)).result(timeout=30)  # its first report, seq 1, made it relay
        [order] = ack.wake_orders
        assert (order.mac, order.address, ack.report_interval_seconds) == ("00:1a:2b:3c:4d:5e", "10.40.0.255", 60)
        assert writer.submit(relay, batch(3)).result(timeout=30).wake_orders == ()  # handed out once
        writer.submit(relay, batch(4, relayed=(order.wake_id,))).result(timeout=30)
        service.tick()  # learns that PC1 now has a wake in flight
        assert writer.submit(woken, batch(2)).result(timeout=30).report_interval_seconds == 300
    finally:
        writer.stop()
    with Session(engine) as session:
        wake = session.exec(select(WakeRequest)).one()
    assert (wake.status, wake.sent_by, wake.route) == ("confirmed", "agent:relay-1", "relay")
    assert wake.confirmed_at >= wake.sent_at



@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # an SQLite controller is alone
def test_only_one_replica_dispatches_so_a_sites_rate_is_not_doubled(engine, tmp_path: Path):
    """Two controllers on one PostgreSQL: the first to take the dispatcher lock sends the packets, and the
    other takes over when it stops."""
    with Session(engine) as session:
        hill = builders.site(session)
        pc1, pc2 = (builders.device(session, hill, f"PC{n}", f"00:1a:2b:3c:4d:0{n}", f"198.51.100.{n}", 24)
                    for n in (1, 2))
        session.commit()
    settings = Settings(database_url=engine.url.render_as_string(hide_password=False), data_dir=tmp_path,
                        wake_local_networks=["198.51.100.0/24"])
    first, second = Recorder(), Recorder()
    def later():  # every paced slot is due
        return utcnow() + timedelta(seconds=2)

    one = WakeService(engine, settings, sender=first, clock=later, awaiting_refresh_seconds=0)
    two = WakeService(engine, settings, sender=second, clock=later, awaiting_refresh_seconds=0)

    def wake(device) -> None:
        with Session(engine) as session:
            request_wakes(session, [session.merge(device)], "before school", "cli", utcnow(), WakeConfig())
            session.commit()

    try:
        wake(pc1)
        one.tick()
        wake(pc2)
        two.tick()
        assert [mac for mac, _, _ in first.sent] == ["00:1a:2b:3c:4d:01"] and second.sent == []
        one.stop()
        two.tick()
        assert [mac for mac, _, _ in second.sent] == ["00:1a:2b:3c:4d:02"]
    finally:
        one.stop()
        two.stop()
