"""Wake tracking, on SQLite and PostgreSQL: paced waves, routes, relay orders, confirmation, retries,
failures with their likely cause, and every step in the audit log. Packets go to a real UDP socket."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network

import pytest
from sqlmodel import Session, select

from agent.protocol import Activity, PowerState, Report, WakeReadiness
from controller.power import dispatch
from controller.power.election import Board, Candidate, Election, RelayTiming
from controller.power.magic import MagicSender
from controller.power.models import WakeRequest, WakeStatus
from controller.power.relaying import Arrival, confirm_arrivals, hand_out_orders, note_relayed
from controller.power.wake import (
    CAUSE_FAST_STARTUP,
    CAUSE_NIC_NOT_ARMED,
    CAUSE_UNKNOWN,
    WakeConfig,
    failed_wakes,
    open_device_ids,
    request_wakes,
    select_devices,
    wake_outcomes,
)
from controller.register.models import ActionRecord
from tests.controller.power import builders

NOW = datetime(2026, 3, 9, 7, 30, tzinfo=UTC)
TIMING = RelayTiming(timedelta(seconds=30))
LOOPBACK = dispatch.Routing(local=[IPv4Network("127.0.0.0/8")], directed=[])
NOWHERE = dispatch.Routing(local=[], directed=[])


@pytest.fixture
def session(engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def listener() -> Iterator[builders.Listener]:
    listening = builders.Listener.open()
    yield listening
    listening.close()


@pytest.fixture
def sender() -> Iterator[MagicSender]:
    sending = MagicSender()
    yield sending
    sending.close()


def board_with(relay_agent: str, relay_device: int, network: str, heard: datetime = NOW) -> Board:
    """``relay_agent`` elected alone on ``network``, reporting on the relay interval, last heard ``heard``."""
    candidate = Candidate(relay_agent, relay_device, f"HOST-{relay_agent}", "server", None,
                          frozenset({IPv4Network(network)}), heard, on_relay_interval=True)
    return Board({IPv4Network(network): Election(IPv4Network(network), candidate, None)}, TIMING)


def relay_pacer(per_second: float) -> dispatch.SitePacer:
    """As the wake service paces relays' orders: per site, across relays, no catching up."""
    return dispatch.SitePacer(per_second, slack=timedelta(0))


def report_ending(at: datetime, relayed: tuple[int, ...] = ()) -> Report:
    return Report(seq=1, start=at - timedelta(minutes=1), end=at, activity=Activity(PowerState.IDLE, 3.0),
                  relayed_wakes=relayed)


def actions(session: Session) -> list[tuple[int, str]]:
    rows = session.exec(select(ActionRecord).where(ActionRecord.kind == "wake").order_by(ActionRecord.id)).all()
    return [(r.details["wake_id"], r.outcome) for r in rows]


class TestWaves:
    def test_a_wave_gives_each_device_its_own_slot_at_the_rate_of_its_site(self, session):
        hill, dale = builders.site(session, "Hill"), builders.site(session, "Dale")
        devices = [builders.device(session, hill, f"HILL-{i}", f"00:00:00:00:01:0{i}") for i in range(5)]
        devices += [builders.device(session, dale, f"DALE-{i}", f"00:00:00:00:02:0{i}") for i in range(3)]
        result = request_wakes(session, devices, "before school", "cli", NOW, WakeConfig(per_second=10))
        slots = {q.hostname: (q.due_at - NOW).total_seconds() for q in result.queued}
        assert [slots[f"HILL-{i}"] for i in range(5)] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
        assert [slots[f"DALE-{i}"] for i in range(3)] == pytest.approx([0.0, 0.1, 0.2])  # sites pace apart

    def test_a_second_wave_queues_behind_the_first_rather_than_doubling_the_rate(self, session):
        hill = builders.site(session)
        first = [builders.device(session, hill, f"A{i}", f"00:00:00:00:01:0{i}") for i in range(3)]
        second = [builders.device(session, hill, f"B{i}", f"00:00:00:00:02:0{i}") for i in range(2)]
        request_wakes(session, first, "wave 1", "cli", NOW, WakeConfig(per_second=2))
        result = request_wakes(session, second, "wave 2", "cli", NOW, WakeConfig(per_second=2))
        assert [(q.due_at - NOW).total_seconds() for q in result.queued] == pytest.approx([1.5, 2.0])

    def test_a_device_is_not_woken_again_within_the_rewake_time(self, session):
        hill = builders.site(session)
        pc = builders.device(session, hill, "PC1", "00:1a:2b:3c:4d:5e")
        config = WakeConfig(rewake_seconds=900)
        assert len(request_wakes(session, [pc], "first", "cli", NOW, config).queued) == 1
        again = request_wakes(session, [pc], "again", "cli", NOW + timedelta(minutes=14), config)
        assert again.queued == [] and "not again yet" in again.skipped[0].why
        later = request_wakes(session, [pc], "later", "cli", NOW + timedelta(minutes=16), config)
        assert len(later.queued) == 1

    def test_a_device_with_no_mac_on_record_is_skipped_with_the_reason(self, session):
        hill = builders.site(session)
        pc = builders.device(session, hill, "PC1", "00:1a:2b:3c:4d:5e")
        for row in session.exec(select(builders.DeviceMac)).all():
            session.delete(row)
        pc.inventory = None
        result = request_wakes(session, [pc], "x", "cli", NOW, WakeConfig())
        assert result.skipped[0].why == "no MAC address known"

    def test_a_group_is_a_room_and_an_unknown_one_is_refused(self, session):
        hill = builders.site(session)
        builders.device(session, hill, "ICT2-01", "00:00:00:00:00:01", room="ICT 2")
        builders.device(session, hill, "OFFICE", "00:00:00:00:00:02", room="Office")
        assert [d.hostname for d in select_devices(session, group="ICT 2")] == ["ICT2-01"]
        with pytest.raises(ValueError, match="no devices in group 'Lab'"):
            select_devices(session, group="Lab")


class TestDirect:
    def test_on_its_own_subnet_the_controller_sends_the_exact_magic_packet_and_records_it(
            self, session, listener, sender):
        hill = builders.site(session)
        pc = builders.device(session, hill, "PC1", "00:1a:2b:3c:4d:5e", address="127.0.0.9", prefix=8)
        config = WakeConfig(port=listener.port)
        request_wakes(session, [pc], "test", "cli", NOW, config)
        result = dispatch.step(session, NOW, Board(), LOOPBACK, config, sender)
        assert result.sent == 1
        assert listener.receive() == builders.magic("00:1a:2b:3c:4d:5e")
        wake = session.exec(select(WakeRequest)).one()
        assert (wake.status, wake.route, wake.sent_by, wake.attempts) == ("sent", "direct", "controller", 1)
        assert actions(session) == [(wake.id, "queued"), (wake.id, "sent")]

    def test_a_wave_is_released_slot_by_slot_not_all_at_once(self, session, listener, sender):
        hill = builders.site(session)
        pcs = [builders.device(session, hill, f"PC{i}", f"00:00:00:00:00:0{i}", "127.0.0.9", 8) for i in range(4)]
        config = WakeConfig(per_second=2, port=listener.port)
        request_wakes(session, pcs, "test", "cli", NOW, config)
        sent = [dispatch.step(session, NOW + timedelta(seconds=s), Board(), LOOPBACK, config, sender).sent
                for s in (0.0, 0.2, 0.5, 1.0, 1.5)]
        assert sent == [1, 0, 1, 1, 1]
        assert {listener.receive() for _ in range(4)} == {builders.magic(f"00:00:00:00:00:0{i}") for i in range(4)}

    def test_a_directed_broadcast_is_sent_only_to_subnets_configured_for_it(self, session, sender):
        hill = builders.site(session)
        pc = builders.device(session, hill, "PC1", "00:1a:2b:3c:4d:5e", address="10.30.0.7", prefix=24)
        routing = dispatch.Routing(local=[], directed=[IPv4Network("10.30.0.0/24")])
        assert routing.route("10.30.0.0/24", Board(), NOW) == dispatch.Route("broadcast", "10.30.0.255")
        assert isinstance(NOWHERE.route("10.30.0.0/24", Board(), NOW), str)
        request_wakes(session, [pc], "test", "cli", NOW, WakeConfig())
        dispatch.step(session, NOW, Board(), NOWHERE, WakeConfig(), sender)
        wake = session.exec(select(WakeRequest)).one()
        assert wake.status == "failed"
        assert wake.failure == ("no relay agent on 10.30.0.0/24 is awake and reporting, and directed broadcast "
                                "is not allowed there")


class TestRelay:
    def test_a_wake_on_another_subnet_becomes_an_order_in_the_relays_reply_then_sent_then_confirmed(
            self, session, sender):
        hill = builders.site(session)
        relay_pc = builders.device(session, hill, "SRV1", "00:00:00:00:00:aa", "10.40.0.2", 24, device_class="server")
        builders.agent(session, relay_pc, "relay-1", NOW)
        target = builders.device(session, hill, "PC1", "00:1a:2b:3c:4d:5e", "10.40.0.77", 24)
        target_agent = builders.agent(session, target, "target-1", NOW - timedelta(hours=10))
        config = WakeConfig(per_second=4)
        request_wakes(session, [target], "test", "cli", NOW, config)
        board = board_with("relay-1", relay_pc.id, "10.40.0.0/24")

        step = dispatch.step(session, NOW, board, NOWHERE, config, sender)
        assert step.handed_to_relays == 1 and step.sent == 0
        assert hand_out_orders(session, ["someone-else"], NOW, 9, 100, relay_pacer(4)) == {}
        orders = hand_out_orders(session, ["relay-1"], NOW + timedelta(seconds=2), 9, 100, relay_pacer(4))["relay-1"]
        wake = session.exec(select(WakeRequest)).one()
        assert (orders[0].wake_id, orders[0].mac, orders[0].address, orders[0].port) == (wake.id, target.inventory[
            "nics"][0]["mac"], "10.40.0.255", 9)
        later = NOW + timedelta(seconds=3)
        assert hand_out_orders(session, ["relay-1"], later, 9, 100, relay_pacer(4)) == {}  # handed out once

        note_relayed(session, [Arrival("target-1", target.id, (report_ending(NOW, (wake.id,)),))], NOW, 9)
        assert wake.status == "ordered"  # only the relay it was handed to can say it sent it
        relay_says = report_ending(NOW + timedelta(seconds=12), (wake.id,))
        note_relayed(session, [Arrival("relay-1", relay_pc.id, (relay_says,))], NOW + timedelta(seconds=12), 9)
        assert (wake.status, wake.sent_by) == ("sent", "agent:relay-1")
        assert open_device_ids(session) == {target.id}

        confirm_arrivals(session, [Arrival(target_agent.id, target.id, (report_ending(NOW - timedelta(hours=9)),))],
                         frozenset({target.id}), NOW + timedelta(minutes=2))
        assert wake.status == "sent"  # a report from before the wake (a spooled backlog) proves nothing
        confirm_arrivals(session, [Arrival(target_agent.id, target.id, (report_ending(NOW + timedelta(minutes=2)),))],
                         frozenset({target.id}), NOW + timedelta(minutes=2))
        assert wake.status == "confirmed"
        assert [o for _, o in actions(session)] == ["queued", "ordered", "sent", "confirmed"]

    def test_orders_gathered_between_two_reports_are_spaced_at_the_sites_rate_again(self, session, sender):
        hill = builders.site(session)
        relay_pc = builders.device(session, hill, "SRV1", "00:00:00:00:00:aa", "10.40.0.2", 24)
        pcs = [builders.device(session, hill, f"PC{i}", f"00:00:00:00:01:0{i}", f"10.40.0.{10 + i}", 24)
               for i in range(3)]
        config = WakeConfig(per_second=4)
        request_wakes(session, pcs, "test", "cli", NOW, config)
        board = board_with("relay-1", relay_pc.id, "10.40.0.0/24")
        for quarter in range(3):
            dispatch.step(session, NOW + timedelta(seconds=quarter / 4), board, NOWHERE, config, sender)
        orders = hand_out_orders(session, ["relay-1"], NOW + timedelta(seconds=30), 9, 100, relay_pacer(4))["relay-1"]
        assert [o.delay_seconds for o in orders] == pytest.approx([0.0, 0.25, 0.5])

    def test_two_relays_of_one_site_share_its_rate_rather_than_each_sending_at_it(self, session, sender):
        hill = builders.site(session)
        pcs = [builders.device(session, hill, f"PC{i}", f"00:00:00:00:01:0{i}", f"10.4{i % 2}.0.{10 + i}", 24)
               for i in range(4)]
        config = WakeConfig(per_second=4)
        request_wakes(session, pcs, "test", "cli", NOW, config)
        one, two = (board_with(f"relay-{n}", 90 + n, f"10.4{n}.0.0/24") for n in (0, 1))
        both = Board({**one.by_network, **two.by_network}, TIMING)
        for quarter in range(4):
            dispatch.step(session, NOW + timedelta(seconds=quarter / 4), both, NOWHERE, config, sender)
        pacer = relay_pacer(4)  # the wake service keeps one for every relay
        first = hand_out_orders(session, ["relay-0"], NOW + timedelta(seconds=30), 9, 100, pacer)["relay-0"]
        second = hand_out_orders(session, ["relay-1"], NOW + timedelta(seconds=30.1), 9, 100, pacer)["relay-1"]
        assert [o.delay_seconds for o in first] == pytest.approx([0.0, 0.25])
        assert [o.delay_seconds for o in second] == pytest.approx([0.4, 0.65])  # after relay-0's, not alongside


class TestRetriesAndFailures:
    def test_a_wake_without_a_report_is_retried_then_failed_and_listed_with_the_likely_cause(
            self, session, listener, sender):
        hill = builders.site(session)
        pc = builders.device(session, hill, "PC1", "00:1a:2b:3c:4d:5e", "127.0.0.9", 8,
                             wake=WakeReadiness(fast_startup=True, nic_armed=True))
        config = WakeConfig(port=listener.port, confirm_seconds=60, attempts=2)
        request_wakes(session, [pc], "test", "cli", NOW, config)
        for minutes in (0, 2, 4):
            dispatch.step(session, NOW + timedelta(minutes=minutes), Board(), LOOPBACK, config, sender)
            if minutes < 4:
                assert listener.receive() == builders.magic("00:1a:2b:3c:4d:5e")
        wake = session.exec(select(WakeRequest)).one()
        assert (wake.status, wake.attempts) == ("failed", 2)
        assert wake.failure == "no report from the device within 1 min of the wake, after 2 attempt(s)"
        [failure] = failed_wakes(session)
        assert (failure.hostname, failure.cause, failure.failed_at) == ("PC1", CAUSE_FAST_STARTUP,
                                                                       NOW + timedelta(minutes=4))
        assert [o for _, o in actions(session)] == ["queued", "sent", "retried", "sent", "failed"]

    @pytest.mark.parametrize(("readiness", "cause"), [
        (WakeReadiness(nic_armed=False), CAUSE_NIC_NOT_ARMED),
        (WakeReadiness(fast_startup=False, modern_standby=False, nic_armed=True), CAUSE_UNKNOWN),
        (None, CAUSE_UNKNOWN),
    ])
    def test_the_cause_comes_from_what_the_agent_found(self, session, sender, readiness, cause):
        hill = builders.site(session)
        pc = builders.device(session, hill, "PC1", "00:1a:2b:3c:4d:5e", "10.9.9.9", 24, wake=readiness)
        request_wakes(session, [pc], "test", "cli", NOW, WakeConfig())
        dispatch.step(session, NOW, Board(), NOWHERE, WakeConfig(), sender)
        assert [f.cause for f in failed_wakes(session, "Hill Primary")] == [cause]
        assert failed_wakes(session, "Elsewhere") == []

    def test_a_later_wake_that_worked_takes_the_device_off_the_failures_list(self, session, sender):
        hill = builders.site(session)
        pc = builders.device(session, hill, "PC1", "00:1a:2b:3c:4d:5e", "10.9.9.9", 24)
        request_wakes(session, [pc], "test", "cli", NOW, WakeConfig())
        dispatch.step(session, NOW, Board(), NOWHERE, WakeConfig(), sender)
        assert len(failed_wakes(session)) == 1
        request_wakes(session, [pc], "again", "cli", NOW + timedelta(hours=1), WakeConfig())
        session.exec(select(WakeRequest).where(WakeRequest.status == "queued")).one().status = WakeStatus.CONFIRMED
        session.flush()
        assert failed_wakes(session) == []
        assert wake_outcomes(session) == {("Hill Primary", "failed"): 1, ("Hill Primary", "confirmed"): 1}
