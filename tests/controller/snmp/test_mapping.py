"""Which device each outlet or port feeds: a metered reading for a device only when every feed was read."""

from __future__ import annotations

import asyncio

import pytest
import yaml

from controller.snmp.mapping import MappingError, device_reading, load_meter_map, parse_meter_map
from controller.snmp.poller import Poller
from controller.snmp.profiles import load_profiles
from tests.controller.snmp.conftest import NAMES, address_of, community, store_for

MAP = f"""
metered:
  - device: serial:CZC1234XYZ
    feeds:
      - {{address: {address_of("apc_ap8853")}}}
  - device: hostname:library-ap
    feeds: [{{address: {address_of("advantech_eki-7712g-4fp")}, port: 4}}]
  - device: hostname:nas
    feeds: [{{address: {address_of("apc_ap7900b")}, outlet: NAS PSU}}]
  - device: id:7
    feeds:
      - {{address: {address_of("advantech_eki-7712g-4fp")}, port: 3}}
      - {{address: {address_of("advantech_eki-7712g-4fp")}, port: 5}}
  - device: id:8
    feeds:
      - {{address: {address_of("advantech_eki-7712g-4fp")}, port: 6}}
      - {{address: 10.99.0.1, outlet: 1}}
  - device: id:9
    feeds: [{{address: {address_of("abbups_abbups")}}}]
"""


@pytest.fixture
def polls(memory_client):
    store = store_for(*((address_of(n), [community(n)]) for n in NAMES))
    results = asyncio.run(Poller(memory_client, load_profiles(), store).poll_many([address_of(n) for n in NAMES]))
    return {r.address: r for r in results}


@pytest.fixture
def meter_map():
    return {entry.device: entry for entry in parse_meter_map(yaml.safe_load(MAP))}


def test_a_whole_pdu_feeding_one_device_gives_its_watts_and_energy_register(polls, meter_map):
    reading = device_reading(meter_map["serial:CZC1234XYZ"], polls)
    assert reading.watts == 1140 and reading.energy.joules == pytest.approx(3512.8 * 3.6e6)
    assert reading.at == polls[address_of("apc_ap8853")].at


def test_a_poe_port_feeds_the_device_plugged_into_it(polls, meter_map):
    assert device_reading(meter_map["hostname:library-ap"], polls).watts == 8.9


def test_several_feeds_add_up_and_drop_the_register(polls, meter_map):
    reading = device_reading(meter_map["id:7"], polls)
    assert reading.watts == pytest.approx(6.4 + 6.2) and reading.energy is None


def test_a_device_with_a_feed_that_was_not_read_gets_no_metered_figure(polls, meter_map):
    assert device_reading(meter_map["id:8"], polls) is None  # half a server would look measured


def test_a_switched_outlet_without_metering_gives_no_figure(polls, meter_map):
    assert device_reading(meter_map["hostname:nas"], polls) is None  # found by name, but it has no watts


def test_a_ups_that_has_not_measured_its_output_gives_no_figure(polls, meter_map):
    assert device_reading(meter_map["id:9"], polls) is None


@pytest.mark.parametrize(("data", "message"), [
    ({"metered": [{"device": "CZC1234XYZ", "feeds": [{"address": "10.0.0.1"}]}]}, "write it as id:"),
    ({"metered": [{"device": "id:1", "feeds": []}]}, "at least one feed"),
    ({"metered": [{"device": "id:1", "feeds": [{"address": "10.0.0.1", "outlet": 1, "port": 2}]}]}, "not both"),
    ({"metered": [{"device": "id:1", "feeds": [{"outlet": 1}]}]}, "expected address"),
    ({"metered": [{"device": "id:1", "feeds": [{"address": "10.0.0.1", "outlet": 3}]},
                  {"device": "id:2", "feeds": [{"address": "10.0.0.1", "outlet": "3"}]}]},
     "outlet 3 of 10.0.0.1 already feeds id:1"),
    ({"outlets": []}, "a meter map is"),
])
def test_a_mistake_in_the_meter_map_is_named(data, message):
    with pytest.raises(MappingError, match=message):
        parse_meter_map(data)


def test_the_meter_map_is_read_from_a_file(tmp_path):
    (tmp_path / "meters.yaml").write_text(MAP)
    assert [e.device for e in load_meter_map(tmp_path / "meters.yaml")][:2] == ["serial:CZC1234XYZ",
                                                                              "hostname:library-ap"]
    with pytest.raises(MappingError, match="cannot read"):
        load_meter_map(tmp_path / "absent.yaml")
