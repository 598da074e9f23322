"""The dispatcher keeps going, on SQLite and PostgreSQL: one wake that fails never stops the others, and a
wake its relay does not send goes to the standby, then by directed broadcast where allowed, then fails
with the reason, every step in the audit log once."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from sqlalchemy import update
from sqlmodel import Session, select

from controller.metrics import build_metrics
from controller.power import dispatch
from controller.power.election import Board, Candidate, Election, RelayTiming
from controller.power.models import WakeRequest
from controller.power.relaying import hand_out_orders
from controller.power.service import WakeService
from controller.power.wake import WakeConfig, request_wakes
from controller.register.ingest import IngestWriter
from controller.register.models import ActionRecord
from controller.settings import Settings
from controller.timeutil import utcnow
from tests.controller.power import builders

NOW = datetime(2026, 3, 9, 7, 30, tzinfo=UTC)
TIMING = RelayTiming(timedelta(seconds=30))
LAN = "10.40.0.0/24"
OTHER_LAN = "10.50.0.0/24"
NOWHERE = dispatch.Routing(local=[], directed=[])
BROADCAST_ALLOWED = dispatch.Routing(local=[], directed=[IPv4Network(LAN)])
CONFIG = WakeConfig(per_second=100, attempts=3)


class Unpaced(dispatch.SitePacer):
    """Every due wake at once: these tests are about failures, not the pace (test_wake.py checks that)."""

    def __init__(self) -> None:
        super().__init__(per_second=1000)

    def slot(self, site_id: int, now: datetime) -> datetime:
        return now - timedelta(hours=1)


def step(session: Session, now: datetime, board: Board, routing: dispatch.Routing, sender) -> dispatch.StepResult:
    return dispatch.step(session, now, board, routing, CONFIG, sender, Unpaced())


def request(session: Session, devices: list) -> None:
    """Wakes requested a second ago: every slot is due by NOW."""
    request_wakes(session, devices, "test", "cli", NOW - timedelta(seconds=1), CONFIG)


class Recorder:
    """Records every packet; raises ``error`` for the MACs in ``refuse`` (a fault inside one wake's step)."""

    def __init__(self, refuse: tuple[str, ...] = (), error: Exception | None = None) -> None:
        self.sent: list[tuple[str, str, int]] = []
        self.refuse, self.error = refuse, error

    def send(self, mac: str, address: str, port: int) -> None:
        if mac in self.refuse:
            raise self.error
        self.sent.append((mac, address, port))

    def macs(self) -> list[str]:
        return [mac for mac, _, _ in self.sent]


@pytest.fixture
def session(engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


def relay(agent_id: str, device_id: int, network: str = LAN) -> Candidate:
    return Candidate(agent_id, device_id, f"HOST-{agent_id}", "desktop", None, frozenset({IPv4Network(network)}),
                     NOW, on_relay_interval=True)


def board(*elections: tuple[Candidate, Candidate | None], heard: dict[str, datetime] | None = None,
          also_known: tuple[Candidate, ...] = ()) -> Board:
    """The elections given; the agents it knows are their relays and ``also_known`` (heard, not elected)."""
    by_network = {net: Election(net, p, s) for p, s in elections for net in p.networks}
    known = {c.agent_id: c for pair in elections for c in pair if c} | {c.agent_id: c for c in also_known}
    return Board(by_network, TIMING, heard or {}, known)


def wake_of(session: Session, device_id: int) -> WakeRequest:
    return session.exec(select(WakeRequest).where(WakeRequest.device_id == device_id)
                        .execution_options(populate_existing=True)).one()


def audit_lines(session: Session, wake: WakeRequest) -> list[tuple[str, str]]:
    rows = session.exec(select(ActionRecord).where(ActionRecord.kind == "wake").order_by(ActionRecord.id)).all()
    return [(r.outcome, r.reason) for r in rows if r.details["wake_id"] == wake.id]


def pcs(session: Session, count: int, address: str = "127.0.0.{n}", prefix: int = 8) -> list:
    hill = builders.site(session)
    return [builders.device(session, hill, f"PC{n}", f"00:00:00:00:00:{n:02x}", address.format(n=n + 10), prefix)
            for n in range(count)]


class TestOneWakeNeverStopsTheOthers:
    def test_a_wake_whose_step_raises_is_logged_counted_retried_then_failed_while_the_others_are_sent(
            self, session, caplog):
        devices = pcs(session, 4)
        request(session, devices)
        bad_mac = devices[1].inventory["nics"][0]["mac"]
        sender = Recorder(refuse=(bad_mac,), error=RuntimeError("driver exploded"))
        local = dispatch.Routing(local=[IPv4Network("127.0.0.0/8")], directed=[])
        bad = wake_of(session, devices[1].id)

        with caplog.at_level(logging.ERROR, logger="controller.power.dispatch"):
            first = step(session, NOW, Board(), local, sender)
        assert (first.sent, first.errors) == (3, 1)
        assert sorted(sender.macs()) == sorted(d.inventory["nics"][0]["mac"] for d in devices if d is not devices[1])
        assert f"wake {bad.id}: the dispatcher's release step failed" in caplog.text
        assert wake_of(session, devices[1].id).status == "queued"  # tried again, after a pause

        later = [step(session, NOW + timedelta(seconds=s), Board(), local, sender) for s in (3, 8)]
        assert [r.errors for r in later] == [1, 1]
        bad = wake_of(session, devices[1].id)
        assert (bad.status, bad.errors) == ("failed", 3)
        assert bad.failure == "the wake dispatcher failed on this wake 3 times; last: RuntimeError: driver exploded"
        assert audit_lines(session, bad)[-1] == ("failed", bad.failure)

    def test_a_wake_whose_row_cannot_be_read_fails_alone(self, session):
        devices = pcs(session, 3, "10.40.0.{n}", 24)
        request(session, devices)
        session.execute(update(WakeRequest).where(WakeRequest.device_id == devices[0].id)
                        .values(network="not a subnet"))
        result = step(session, NOW, board((relay("p", 99), None)), NOWHERE, Recorder())
        assert (result.handed_to_relays, result.errors) == (2, 1)
        assert [wake_of(session, d.id).relay_agent_id for d in devices] == [None, "p", "p"]

    def test_when_writing_a_batch_fails_each_release_is_written_alone_and_only_the_bad_one_is_lost(
            self, session, monkeypatch):
        devices = pcs(session, 3)
        request(session, devices)
        doomed = wake_of(session, devices[2].id).id
        real = dispatch.insert_audits

        def failing_for_one(s: Session, rows: list[dict]) -> None:
            if any(r["details"]["wake_id"] == doomed for r in rows):
                raise RuntimeError("disk full, for this row only")
            real(s, rows)

        monkeypatch.setattr(dispatch, "insert_audits", failing_for_one)
        local = dispatch.Routing(local=[IPv4Network("127.0.0.0/8")], directed=[])
        result = step(session, NOW, Board(), local, Recorder())
        assert result.errors == 1
        assert [wake_of(session, d.id).status for d in devices] == ["sent", "sent", "queued"]
        assert wake_of(session, devices[2].id).errors == 1

    def test_an_audit_line_already_written_does_not_stop_the_step(self, session):
        """The bug this replaces: a reroute's audit key repeated one already stored, the unique constraint failed
        and the whole step rolled back, every second, for every wake of the estate."""
        target, other = pcs(session, 2, "10.40.0.{n}", 24)
        request(session, [target])
        step(session, NOW, board((relay("p", 99), None)), NOWHERE, Recorder())
        wake = wake_of(session, target.id)
        session.add(ActionRecord(at=NOW, site_id=wake.site_id, device_id=target.id, kind="wake", outcome="rerouted",
                                 reason="written by an earlier try of this very step", actor="controller",
                                 source_key=f"wake:{wake.id}:0:1:rerouted", details={"wake_id": wake.id}))
        request(session, [other])
        quiet = board((relay("p", 99), None), heard={"p": NOW - timedelta(seconds=60)})
        result = step(session, NOW + timedelta(seconds=1), quiet, BROADCAST_ALLOWED, Recorder())
        assert (result.errors, result.rerouted, result.sent) == (0, 1, 2)
        assert [o for o, _ in audit_lines(session, wake)] == ["queued", "rerouted", "sent"]


class TestFailover:
    def test_a_wake_its_primary_never_picked_up_goes_to_the_standby_then_broadcast_then_fails(self, session):
        target, elsewhere = pcs(session, 2, "10.40.0.{n}", 24)
        elsewhere.inventory = {**elsewhere.inventory, "nics": [{**elsewhere.inventory["nics"][0],
                                                                "ipv4": ["10.50.0.9"]}]}
        session.add(elsewhere)
        session.flush()
        request(session, [target, elsewhere])
        pair = (relay("p", 91), relay("s", 92))
        far = (relay("far", 93, OTHER_LAN), None)
        step(session, NOW, board(pair, far), NOWHERE, Recorder())
        assert wake_of(session, target.id).relay_agent_id == "p"
        assert wake_of(session, elsewhere.id).relay_agent_id == "far"

        # p stops reporting; 37.5 s later (1.25 intervals) it is passed over, the other subnet untouched
        p_quiet = board(pair, far, heard={"p": NOW, "s": NOW + timedelta(seconds=35), "far": NOW + timedelta(
            seconds=35)})
        assert step(session, NOW + timedelta(seconds=37), p_quiet, NOWHERE, Recorder()).rerouted == 0
        result = step(session, NOW + timedelta(seconds=38), p_quiet, NOWHERE, Recorder())
        wake = wake_of(session, target.id)
        assert (result.rerouted, wake.relay_agent_id, wake.passed_over, wake.reroutes) == (1, "s", ["p"], 1)
        assert wake_of(session, elsewhere.id).relay_agent_id == "far"
        assert audit_lines(session, wake)[-1] == (
            "rerouted", "relay HOST-p (agent p) has not reported for 38 s (relays report every 30 s) and did not "
                        "pick the order up; routing again without it")

        # s takes the order, then goes quiet without saying it sent it: directed broadcast, where allowed
        hand_out_orders(session, ["s"], NOW + timedelta(seconds=40), 9, 100, dispatch.SitePacer(100))
        sender = Recorder()
        both_quiet = board(pair, far, heard={"p": NOW, "s": NOW + timedelta(seconds=40),
                                             "far": NOW + timedelta(seconds=75)})
        assert step(session, NOW + timedelta(seconds=77), both_quiet, BROADCAST_ALLOWED, sender).rerouted == 0
        step(session, NOW + timedelta(seconds=78), both_quiet, BROADCAST_ALLOWED, sender)
        wake = wake_of(session, target.id)
        assert (wake.status, wake.route, wake.passed_over, sender.sent) == (
            "sent", "broadcast", ["p", "s"], [(target.inventory["nics"][0]["mac"], "10.40.0.255", 9)])
        assert audit_lines(session, wake)[-1] == (
            "sent", "sent, unconfirmed: directed broadcast to 10.40.0.255:9 from the controller, for the router to "
                    "forward; only the device reporting in confirms it arrived")
        assert [o for o, _ in audit_lines(session, wake)] == ["queued", "rerouted", "ordered", "rerouted", "sent"]

    def test_with_no_standby_and_no_broadcast_the_wake_fails_naming_the_relays_that_did_not_send_it(self, session):
        [target] = pcs(session, 1, "10.40.0.{n}", 24)
        request(session, [target])
        step(session, NOW, board((relay("p", 91), None)), NOWHERE, Recorder())
        quiet = board((relay("p", 91), None), heard={"p": NOW - timedelta(seconds=60)})
        step(session, NOW + timedelta(seconds=1), quiet, NOWHERE, Recorder())
        wake = wake_of(session, target.id)
        assert wake.status == "failed"
        assert wake.failure == ("the relay agent(s) given it did not send it (HOST-p (agent p)); no other relay "
                                "agent on 10.40.0.0/24 is awake and reporting, and directed broadcast is not allowed "
                                "there")

    def test_a_relay_that_is_live_but_no_longer_elected_hands_its_wakes_back(self, session):
        [target] = pcs(session, 1, "10.40.0.{n}", 24)
        request(session, [target])
        step(session, NOW, board((relay("p", 91), relay("s", 92))), NOWHERE, Recorder())
        only_s = board((relay("s", 92), None), also_known=(relay("p", 91),))  # p now powers down soon
        step(session, NOW + timedelta(seconds=1), only_s, NOWHERE, Recorder())
        wake = wake_of(session, target.id)
        assert (wake.relay_agent_id, wake.passed_over) == ("s", ["p"])
        assert audit_lines(session, wake)[-1][1] == (
            "relay HOST-p (agent p) is no longer elected (it powers down soon, or another took over) and did not pick "
            "the order up; routing again without it")

    def test_a_relay_still_reporting_gets_one_more_report_to_say_it_sent_an_order_then_loses_it(self, session):
        [target] = pcs(session, 1, "10.40.0.{n}", 24)
        request(session, [target])
        pair = (relay("p", 91), relay("s", 92))
        step(session, NOW, board(pair), NOWHERE, Recorder())
        hand_out_orders(session, ["p"], NOW, 9, 100, dispatch.SitePacer(100))

        def later(seconds: int) -> dispatch.StepResult:
            reporting = board(pair, heard={"p": NOW + timedelta(seconds=seconds - 5), "s": NOW + timedelta(
                seconds=seconds - 5)})
            return step(session, NOW + timedelta(seconds=seconds), reporting, NOWHERE, Recorder())

        assert later(40).rerouted == 0  # past its silence, but p reported 5 s ago: it may be behind
        assert later(68).rerouted == 1
        wake = wake_of(session, target.id)
        assert (wake.relay_agent_id, wake.passed_over) == ("s", ["p"])
        assert audit_lines(session, wake)[-1][1] == ("relay HOST-p (agent p) took the order but has not said it "
                                                     "sent it, 68 s after its time; routing again without it")

    def test_a_new_wake_waits_for_a_relay_that_is_only_late_rather_than_failing(self, session):
        [target] = pcs(session, 1, "10.40.0.{n}", 24)
        request(session, [target])
        late = board((relay("p", 91), None), heard={"p": NOW - timedelta(seconds=40)})  # past 37.5 s, not 60 s
        assert step(session, NOW, late, NOWHERE, Recorder()).held == 1
        wake = wake_of(session, target.id)
        assert (wake.status, wake.relay_agent_id, wake.due_at) == ("queued", None, NOW + timedelta(seconds=7.5))
        heard_again = board((relay("p", 91), None), heard={"p": NOW + timedelta(seconds=5)})
        step(session, NOW + timedelta(seconds=8), heard_again, NOWHERE, Recorder())
        assert wake_of(session, target.id).relay_agent_id == "p"

    def test_a_device_is_never_relay_for_its_own_wake(self, session):
        [target] = pcs(session, 1, "10.40.0.{n}", 24)
        request(session, [target])
        step(session, NOW, board((relay("itself", target.id), relay("s", 92))), NOWHERE, Recorder())
        assert wake_of(session, target.id).relay_agent_id == "s"


def test_the_service_counts_wake_errors_and_reroutes_for_metrics(engine, database_url: str, tmp_path: Path):
    with Session(engine) as session:
        devices = pcs(session, 2, "198.51.100.{n}", 24)
        session.commit()
        refused = devices[0].inventory["nics"][0]["mac"]
    settings = Settings(database_url=database_url, data_dir=tmp_path, wake_local_networks=["198.51.100.0/24"])
    sender = Recorder(refuse=(refused,), error=RuntimeError("boom"))
    service = WakeService(engine, settings, sender=sender, clock=lambda: utcnow() + timedelta(seconds=2))
    with Session(engine) as session:
        request_wakes(session, [session.merge(d) for d in devices], "test", "cli", utcnow(), CONFIG)
        session.commit()
    try:
        errors = 0
        for _ in range(50):  # the pacer lets one wake go per slot of its site
            errors += service.tick().errors
            if sender.sent and errors:
                break
            time.sleep(0.02)
        assert (errors, len(sender.sent)) == (1, 1)
    finally:
        service.stop()
    writer = IngestWriter(engine, 300)
    text = generate_latest(build_metrics(engine, writer, settings, wake=service.counters).registry).decode()
    assert "caretaker_wake_dispatch_errors_total 1.0" in text
    assert "caretaker_wake_dispatch_step_failures_total 0.0" in text
    assert "caretaker_wake_reroutes_total 0.0" in text
