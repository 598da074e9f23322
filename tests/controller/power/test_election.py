"""Relay election: only machines that are really awake and staying up relay; relays already on the relay
interval keep the job; servers, then desktops, then the longest uptime lead; equals are spread by a hash,
not by the lowest id; a relay that goes quiet is passed over within its silence; a device never relays
its own wake; and both relays are the ones kept awake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network

import pytest
from sqlmodel import Session

from agent.protocol import (
    AgentSchedule,
    EnforcementMode,
    Inventory,
    Nic,
    OperatingSystem,
    PowerActionKind,
    PowerState,
    ScheduleIntent,
    ScheduleWindow,
)
from controller.power.election import (
    Candidate,
    NetworkMemo,
    RelayTiming,
    candidates,
    current_board,
    elect,
    powers_down_soon,
)
from controller.register.devices import apply_inventory
from tests.controller.power import builders

NOW = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # the night the clocks go back: nothing here may care
LAN_A, LAN_B = IPv4Network("10.1.0.0/24"), IPv4Network("10.2.0.0/24")
TIMING = RelayTiming(timedelta(seconds=30))
REPORT_INTERVAL = 300


def candidate(agent: str, device: int, device_class: str = "desktop", up_hours: float | None = None,
              networks: tuple[IPv4Network, ...] = (LAN_A,), relaying: bool = False,
              heard_ago: float = 10) -> Candidate:
    boot = NOW - timedelta(hours=up_hours) if up_hours is not None else None
    return Candidate(agent, device, f"PC-{agent}", device_class, boot, frozenset(networks),
                     NOW - timedelta(seconds=heard_ago), relaying)


def pair(board, network=LAN_A) -> tuple[str, str | None]:
    election = board.by_network[network]
    return election.primary.agent_id, election.standby.agent_id if election.standby else None


def test_a_server_leads_whatever_a_desktops_uptime_and_laptops_come_last():
    board = elect([candidate("lap", 3, "laptop", up_hours=2000), candidate("desk", 1, up_hours=900),
                   candidate("srv", 9, "server", up_hours=1)])
    assert pair(board) == ("srv", "desk")


def test_among_desktops_the_longest_uptime_leads():
    board = elect([candidate("young", 1, up_hours=2), candidate("old", 5, up_hours=50), candidate("unknown", 0)])
    assert pair(board) == ("old", "young")


def test_equal_desktops_are_not_ranked_by_the_lowest_id_but_spread_across_subnets():
    subnets = [IPv4Network(f"10.9.{n}.0/24") for n in range(24)]
    twins = [candidate(f"twin{i}", i, up_hours=50, networks=tuple(subnets)) for i in (1, 2)]
    board = elect(twins)
    leaders = {board.by_network[net].primary.agent_id for net in subnets}
    assert leaders == {"twin1", "twin2"}  # neither the lowest id nor any one machine carries every subnet
    assert elect(list(reversed(twins))) == board  # deterministic: every replica elects the same


def test_relays_already_on_the_relay_interval_keep_the_job_when_a_better_machine_appears():
    board = elect([candidate("srv-new", 9, "server", up_hours=900), candidate("desk1", 1, relaying=True),
                   candidate("desk2", 2, relaying=True)])
    assert set(pair(board)) == {"desk1", "desk2"}


def test_a_machine_about_to_power_down_is_passed_over_and_only_the_best_are_asked():
    asked = []

    def powering_down(device_id: int) -> bool:
        asked.append(device_id)
        return device_id == 1

    people = [candidate("sleepy", 1, "server"), candidate("b", 2, up_hours=9), candidate("c", 3, up_hours=5),
              candidate("d", 4, up_hours=1)]
    assert pair(elect(people, TIMING, powering_down)) == ("b", "c")
    assert sorted(asked) == [1, 2, 3]  # d was never needed


def test_a_schedule_that_cannot_be_compiled_does_not_leave_the_subnet_without_relays():
    def broken(device_id: int) -> bool:
        raise LookupError("no policy for you")

    assert pair(elect([candidate("a", 1)], TIMING, broken)) == ("a", None)


def window(start_in_minutes: float, mode: EnforcementMode | None = EnforcementMode.PASSIVE,
           intent: ScheduleIntent = ScheduleIntent.POWER_DOWN) -> AgentSchedule:
    start = NOW + timedelta(minutes=start_in_minutes)
    return AgentSchedule("v1", "Europe/London", NOW + timedelta(days=1), windows=(ScheduleWindow(
        start, start + timedelta(hours=10), intent, PowerActionKind.SHUTDOWN if intent == "power_down" else None,
        mode),))


@pytest.mark.parametrize(("schedule", "soon"), [
    (window(3), True),  # powers down in 3 minutes
    (window(-60), True),  # already in a power-down window: it goes as soon as it is idle
    (window(6), False),  # beyond the five minutes looked ahead
    (window(3, EnforcementMode.OBSERVE), False),  # observe mode only records
    (window(3, None), False),  # no mode is observe, as the agent reads it
    (window(3, intent=ScheduleIntent.KEEP_ON), False),
    (None, False),
])
def test_about_to_power_down_means_an_acting_power_down_window_within_the_lookahead(schedule, soon):
    assert powers_down_soon(schedule, NOW, timedelta(minutes=5)) is soon


def test_a_relay_is_live_only_on_the_relay_interval_and_heard_from_within_its_silence():
    fresh, newcomer = candidate("fresh", 1, relaying=True), candidate("new", 2, up_hours=1)
    board = elect([fresh, newcomer], TIMING)
    assert board.relay_for(LAN_A, NOW).agent_id == "fresh"
    late = board.hearing({"fresh": NOW - timedelta(seconds=38)})  # 30 s interval: silent past 37.5 s
    assert late.relay_for(LAN_A, NOW) is None  # and the newcomer is not live until it reports as a relay
    assert late.late(LAN_A, NOW) and not late.late(LAN_A, NOW + timedelta(seconds=23))  # gone after 60 s
    assert board.relay_for(LAN_A, NOW, passed_over=["fresh"]) is None
    assert board.relay_for(LAN_B, NOW) is None


def test_a_device_never_relays_its_own_wake():
    board = elect([candidate("a", 1, relaying=True, up_hours=9), candidate("b", 2, relaying=True, up_hours=1)])
    assert board.relay_for(LAN_A, NOW, target_device=1).agent_id == "b"
    assert board.relay_for(LAN_A, NOW).agent_id == "a"


def test_only_agents_awake_by_their_last_report_are_elected_and_a_quiet_relay_drops_out(engine):
    with Session(engine) as session:
        hill = builders.site(session)
        booted = NOW - timedelta(hours=9)
        machines = {name: builders.device(session, hill, name, f"00:00:00:00:00:0{i}", f"10.1.0.{i + 2}", 24,
                                          boot_time=booted if name == "RELAY" else None)
                    for i, name in enumerate(["RELAY", "DESK", "ASLEEP", "STALE", "QUIET", "RETIRED"])}
        builders.agent(session, machines["RELAY"], "relay", NOW - timedelta(seconds=20))
        builders.agent(session, machines["DESK"], "desk", NOW - timedelta(minutes=4), report_seconds=300)
        builders.agent(session, machines["ASLEEP"], "asleep", NOW - timedelta(seconds=5), PowerState.SLEEP)
        builders.agent(session, machines["STALE"], "stale", NOW - timedelta(minutes=11), report_seconds=300)
        builders.agent(session, machines["QUIET"], "quiet", NOW - timedelta(seconds=61))  # a relay, silent 2 intervals
        builders.agent(session, machines["RETIRED"], "retired", NOW).retired_at = NOW
        session.flush()
        found = {c.agent_id: c for c in candidates(session, NOW, TIMING, REPORT_INTERVAL)}
        assert set(found) == {"relay", "desk", "asleep", "quiet"}  # heard from lately; stale and retired are not
        assert found["relay"].networks == {IPv4Network("10.1.0.0/24")}  # from the stored inventory's NICs
        assert (found["relay"].boot_time, found["desk"].boot_time) == (booted, None)
        assert found["relay"].on_relay_interval and not found["desk"].on_relay_interval
        assert [a for a, c in sorted(found.items()) if not c.awake or c.quiet] == ["asleep", "quiet"]
        board = current_board(session, NOW, TIMING, REPORT_INTERVAL)
        assert pair(board, IPv4Network("10.1.0.0/24")) == ("relay", "desk")
        assert board.relay_devices == {machines["RELAY"].id, machines["DESK"].id}  # both are kept awake


def test_elections_reread_the_nics_of_only_the_devices_whose_inventory_changed_since(engine):
    """A laptop moved to another subnet is a candidate there at the next election; the others' subnets are
    remembered from the last (at 10,000 devices, decoding every NIC every few seconds held up ingest)."""
    with Session(engine) as session:
        hill = builders.site(session)
        laptop = builders.device(session, hill, "LAPTOP", "00:00:00:00:00:01", "10.1.0.5", 24)
        desk = builders.device(session, hill, "DESK", "00:00:00:00:00:02", "10.1.0.6", 24)
        builders.agent(session, laptop, "laptop", NOW - timedelta(seconds=20))
        builders.agent(session, desk, "desk", NOW - timedelta(seconds=20))
        session.flush()
        memo = NetworkMemo()
        assert {c.agent_id: c.networks for c in candidates(session, NOW, TIMING, REPORT_INTERVAL, memo)} == {
            "laptop": {LAN_A}, "desk": {LAN_A}}
        moved = Inventory(hostname="LAPTOP", os=OperatingSystem("Windows", "11"),
                          nics=(Nic("wlan0", "00:00:00:00:00:01", ("10.2.0.9",), ipv4_prefixes=(24,)),))
        apply_inventory(session, laptop, moved, "agent:laptop")
        desk.inventory = {**desk.inventory, "nics": []}  # changed behind the register's back: not re-read
        session.flush()
        assert {c.agent_id: c.networks for c in candidates(session, NOW, TIMING, REPORT_INTERVAL, memo)} == {
            "laptop": {LAN_B}, "desk": {LAN_A}}
        assert {c.agent_id: c.networks for c in candidates(session, NOW, TIMING, REPORT_INTERVAL)} == {
            "laptop": {LAN_B}}  # without a memo, everything is read: the desk has no subnet left
