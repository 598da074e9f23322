"""Relay election: deterministic, servers first, then the longest uptime, then the lowest device id;
a silent primary drops out and its standby leads; and the agents elected are the ones kept awake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network

from sqlmodel import Session

from controller.power.election import Candidate, candidates, elect, is_relay, relay_device_ids
from tests.controller.power import builders

NOW = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # the night the clocks go back: nothing here may care
LAN_A, LAN_B = IPv4Network("10.1.0.0/24"), IPv4Network("10.2.0.0/24")


def candidate(agent: str, device: int, server: bool = False, up_hours: float | None = None,
              networks: tuple[IPv4Network, ...] = (LAN_A,)) -> Candidate:
    boot = NOW - timedelta(hours=up_hours) if up_hours is not None else None
    return Candidate(agent, device, server, boot, frozenset(networks))


def test_a_server_leads_whatever_a_desktop_uptime():
    board = elect([candidate("desk", 1, up_hours=900), candidate("srv", 9, server=True, up_hours=1)])
    assert (board.by_network[LAN_A].primary.agent_id, board.by_network[LAN_A].standby.agent_id) == ("srv", "desk")


def test_among_equals_the_longest_uptime_then_the_lowest_device_id_leads():
    board = elect([candidate("young", 1, up_hours=2), candidate("old", 5, up_hours=50),
                   candidate("unknown", 0), candidate("old-twin", 4, up_hours=50)])
    election = board.by_network[LAN_A]
    assert (election.primary.agent_id, election.standby.agent_id) == ("old-twin", "old")


def test_the_same_candidates_in_any_order_elect_the_same_pair():
    people = [candidate(f"a{i}", i, up_hours=i % 3) for i in range(7)]
    assert elect(people) == elect(list(reversed(people)))


def test_each_subnet_elects_its_own_and_a_lone_agent_has_no_standby():
    board = elect([candidate("a", 1), candidate("b", 2, networks=(LAN_B,)), candidate("both", 3,
                                                                                      networks=(LAN_A, LAN_B))])
    assert board.relay_for(LAN_A).agent_id == "a" and board.relay_for(LAN_B).agent_id == "b"
    assert board.relay_for(IPv4Network("10.3.0.0/24")) is None
    assert elect([candidate("only", 1)]).by_network[LAN_A].standby is None


def test_a_primary_that_falls_silent_hands_over_to_the_standby_and_both_are_kept_awake(engine):
    with Session(engine) as session:
        hill = builders.site(session)
        srv = builders.device(session, hill, "SRV", "00:00:00:00:00:01", "10.1.0.2", 24, device_class="server")
        desk = builders.device(session, hill, "DESK", "00:00:00:00:00:02", "10.1.0.3", 24)
        asleep = builders.device(session, hill, "ASLEEP", "00:00:00:00:00:03", "10.1.0.4", 24)
        builders.agent(session, srv, "srv", NOW - timedelta(minutes=1))
        builders.agent(session, desk, "desk", NOW - timedelta(minutes=2))
        builders.agent(session, asleep, "asleep", NOW - timedelta(hours=8))
        assert {c.agent_id for c in candidates(session, NOW, 900)} == {"srv", "desk"}
        assert relay_device_ids(session, NOW, 900) == {srv.id, desk.id}
        assert is_relay(session, srv.id, NOW, 900) and not is_relay(session, asleep.id, NOW, 900)
        later = NOW + timedelta(minutes=15, seconds=30)  # srv last heard 16.5 min ago, desk re-reported
        builders.agent(session, builders.device(session, hill, "DESK2", "00:00:00:00:00:04", "10.1.0.5", 24),
                       "desk2", later)
        session.get(builders.Agent, "desk").last_seen = later
        session.flush()
        board = elect(candidates(session, later, 900))
        assert (board.relay_for(LAN_A).agent_id, board.by_network[LAN_A].standby.agent_id) == ("desk", "desk2")
