"""Rooms and tags: the precedence of their four sources, and placement rules as a policy-directory file.

Fixtures are written here from policies/README.md ("Rooms, groups and tags")."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from controller.policy import loader
from controller.register.placement import Described, PlacementRule, Source, Stored, addresses_of, resolve
from tests.conftest import REPO

HALL = PlacementRule("Exam hall", room="Hall", tags=("exam-room",), hostnames=("HALL-*",), source="p.yaml:2")
SUITES = PlacementRule("IT suites", room="IT Suite {1}", hostname_regex=re.compile(r"IT(\d+)-PC\d+", re.I),
                       source="p.yaml:6")
STAFF = PlacementRule("Staff network", tags=("staff",), subnets=(ipaddress.ip_network("10.99.0.0/16"),
                                                                 ipaddress.ip_network("2001:db8:99::/48")))
SCREENS = PlacementRule("Screens the agent names", tags=("signage",), agent_tags=("screen",))


def device(hostname: str = "HALL-PC01", addresses: tuple[str, ...] = (), agent_tags: tuple[str, ...] = (),
           agent_room: str | None = None, device_class: str = "desktop", site: str = "Hillside Primary") -> Described:
    return Described(hostname, device_class, site, tuple(ipaddress.ip_address(a) for a in addresses),
                     agent_tags, agent_room)


def test_hand_beats_register_beats_rules_beats_the_agent_for_the_room():
    rules = [HALL]
    assert resolve(Stored(), device(agent_room="Corridor"), rules).room.describe() == "Hall (rule: Exam hall, p.yaml:2)"
    assert resolve(Stored(register_room="Sports Hall"), device(), rules).room.source is Source.REGISTER
    assert resolve(Stored(hand_room="Stage", register_room="Sports Hall"), device(), rules).room.value == "Stage"
    assert resolve(Stored(), device("OFFICE-PC01", agent_room="Office"), rules).room.source is Source.AGENT
    assert resolve(Stored(), device("OFFICE-PC01"), rules).room is None


def test_tags_add_up_from_every_source_and_a_tag_removed_by_hand_stays_removed():
    found = resolve(Stored(hand_tags=("Exam-Room",), register_tags=("laptop-trolley",)),
                    device(addresses=("10.99.4.2",), agent_tags=("screen",)), [HALL, STAFF, SCREENS])
    assert [t.describe() for t in found.tags] == [
        "Exam-Room (hand)", "laptop-trolley (register)", "staff (rule: Staff network)",
        "signage (rule: Screens the agent names)", "screen (agent)"]
    removed = resolve(Stored(hand_untags=("signage",)), device(agent_tags=("signage",)), [SCREENS])
    assert removed.tag_names == () and removed.untagged == ("signage",)


def test_a_regex_rule_names_rooms_from_the_hostname_and_subnets_match_either_family():
    assert resolve(Stored(), device("it3-pc14"), [SUITES]).room_name == "IT Suite 3"
    assert resolve(Stored(), device("IT3-LAPTOP"), [SUITES]).room is None
    assert resolve(Stored(), device("X", addresses=("2001:db8:99::7",)), [STAFF]).tag_names == ("staff",)
    assert resolve(Stored(), device("X", addresses=("10.98.0.1",)), [STAFF]).tag_names == ()


def test_addresses_come_from_the_stored_inventory_and_bad_ones_are_ignored():
    inventory = {"nics": [{"ipv4": ["10.12.0.7"], "ipv6": ["fe80::1%eth0", "not-an-address"]}]}
    assert [str(a) for a in addresses_of(inventory)] == ["10.12.0.7", "fe80::1"]


def test_the_example_placement_file_places_the_demo_estate():
    rules = loader.load([REPO / "policies"]).placement
    assert resolve(Stored(), device("NORT-R01-PC03", site="Northgate Academy"), rules).room_name == "Sports Hall"
    assert resolve(Stored(), device("HILL-R03-PC07"), rules).room_name == "Room 03"
    assert resolve(Stored(), device("NORT-R05-PC01", site="Northgate Academy"), rules).tag_names == ("signage",)
    assert resolve(Stored(), device("HILL-R01-PC01"), rules).tag_names == ()
    assert resolve(Stored(), device("NORT-SRV01", device_class="server"), rules).tag_names == ("server",)


@pytest.mark.parametrize(("text", "problem"), [
    ("placement:\n  - match: {hostnames: [HALL-*]}\n", "p.yaml:2:5: placement[0]: the rule places nothing"),
    ("placement:\n  - match: {}\n    room: Hall\n", "p.yaml:2:12: placement[0].match: match at least one of"),
    ("placement:\n  - match: {hostname_regex: 'IT(\\d+'}\n    room: Hall\n",
     "p.yaml:2:29: placement[0].match.hostname_regex: 'IT(\\\\d+' is not a regular expression"),
    ("placement:\n  - match: {subnets: [10.0.0.0/33]}\n    room: Hall\n",
     "p.yaml:2:23: placement[0].match.subnets[0]: '10.0.0.0/33' is not a subnet"),
    ("placement:\n  - match: {hostnames: [A*]}\n    room: 'Suite {1}'\n",
     "p.yaml:3:11: placement[0].room: {1} names a group the hostname_regex does not have"),
    ("placement:\n  - match: {hostname: [A*]}\n    room: Hall\n",
     "p.yaml:2:13: placement[0].match.hostname: unknown key 'hostname' (did you mean 'hostnames'?)"),
])
def test_mistakes_in_placement_rules_name_their_line_and_column(tmp_path: Path, text: str, problem: str):
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(loader.PolicyError) as raised:
        loader.load([tmp_path / "p.yaml"])
    assert str(raised.value.problems[0]).replace(str(tmp_path) + "/", "").startswith(problem)
