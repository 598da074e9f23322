"""Kit is recognised by what it answers, not by one exact object: a printer without a page counter is
still a printer, a PDU that only has ENTITY-SENSOR watt sensors is still a PDU.

Most cases are real recordings with objects taken away or added (said in each test); the 802.11 and
ENTITY-SENSOR cases are built from the MIBs, since no recording has them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from controller.snmp.client import Kind, Value
from controller.snmp.identify import Identifications
from controller.snmp.loads import DEVICE, poll_loads
from controller.snmp.memory import MemoryAgent, MemoryClient
from controller.snmp.poller import Poller
from controller.snmp.profiles import load_profiles
from controller.snmp.readings import DevicePoll
from tests.controller.snmp.conftest import community, recording, store_for

ADDRESS = "10.0.0.9"


def poll(values: Mapping[str, Value], name: str = "device", client: MemoryClient | None = None,
         identifications: Identifications | None = None) -> DevicePoll:
    client = client or MemoryClient({(ADDRESS, 161): MemoryAgent(values, frozenset({name}))})
    poller = Poller(client, load_profiles(), store_for((ADDRESS, [community(name)])),
                    identifications=identifications)
    return asyncio.run(poller.poll(ADDRESS))


def without(name: str, *prefixes: str) -> dict[str, Value]:
    return {oid: v for oid, v in recording(name).values.items() if not any(oid.startswith(p + ".") for p in prefixes)}


def oid(value: str) -> Value:
    return Value(Kind.OID, value)


def integer(n: int) -> Value:
    return Value(Kind.INTEGER, n)


def text(s: str) -> Value:
    return Value(Kind.OCTETS, s.encode())


def test_a_printer_without_page_counter_or_serial_is_still_a_printer_with_its_supplies():
    """The Sharp recording without prtMarkerLifeCount's table and prtGeneralSerialNumber."""
    values = without("sharp", "1.3.6.1.2.1.43.10", "1.3.6.1.2.1.43.5")
    found = poll(values, "sharp")
    assert (found.kind, found.identity.vendor, found.identity.serial) == ("printer", "Sharp", None)
    assert found.printer.life_count is None and len(found.printer.supplies) == 14


def test_a_printer_known_only_as_a_host_resources_printer_device_is_a_printer():
    """The Sharp recording without any Printer-MIB object: its hrPrinterTable row still says printer."""
    found = poll(without("sharp", "1.3.6.1.2.1.43"), "sharp")
    assert (found.kind, found.identity.model, found.printer.status) == ("printer", "SHARP MX-3570N", "warning")


def test_a_ups_known_only_by_its_vendor_subtree_is_a_ups():
    """The NetAgent recording without its (empty) UPS-MIB objects: PPC's subtree decides."""
    found = poll(without("netagent2_1", "1.3.6.1.2.1.33"), "netagent2_1")
    assert (found.kind, found.identity.vendor, found.ups.load_percent) == ("ups", "PPC", 16)


def test_a_switch_whose_chassis_is_not_its_first_entity_is_found_by_walking_the_classes():
    """The ERS 3510 recording without BRIDGE-MIB, and a port entity added before its chassis: the first
    entPhysicalClass is a port, so identification walks the column to find the chassis."""
    values = without("boss_ers3510", "1.3.6.1.2.1.17")
    values["1.3.6.1.2.1.47.1.1.1.1.5.1"] = integer(10)  # port(10)
    client = MemoryClient({(ADDRESS, 161): MemoryAgent(values, frozenset({"boss_ers3510"}))})
    found = poll(values, "boss_ers3510", client)
    assert (found.kind, found.profile, found.identity.serial) == ("switch", "switch", "15JP323F207J")
    walked = [r.oids for r in client.requests if r.operation == "walk"]
    assert ("1.3.6.1.2.1.47.1.1.1.1.5",) in walked


def test_entity_sensor_watts_make_a_pdu_and_are_its_power():
    """Built from ENTITY-SENSOR-MIB (RFC 3433): two watt sensors in units with one decimal place, and a
    temperature sensor that is not power."""
    sensors = "1.3.6.1.2.1.99.1.1.1"
    values = {"1.3.6.1.2.1.1.2.0": oid("1.3.6.1.4.1.99999.1"), "1.3.6.1.2.1.1.1.0": Value(Kind.OCTETS, b"Meter"),
              **{f"{sensors}.1.{i}": integer(t) for i, t in ((1, 6), (2, 6), (3, 8))},   # type: watts, watts, celsius
              **{f"{sensors}.2.{i}": integer(9) for i in (1, 2, 3)},                     # scale: units
              **{f"{sensors}.3.{i}": integer(1) for i in (1, 2, 3)},                     # precision: one decimal
              **{f"{sensors}.4.{i}": integer(v) for i, v in ((1, 1234), (2, 4321), (3, 215))}}
    found = poll(values)
    assert (found.kind, found.profile, found.power.watts) == ("pdu", "sensor-pdu", 555.5)


def test_an_ieee_802_11_agent_is_an_access_point():
    """Built from IEEE802dot11-MIB: a dot11StationID and nothing vendor-specific."""
    values = {"1.3.6.1.2.1.1.2.0": oid("1.3.6.1.4.1.99999.2"),
              "1.2.840.10036.1.1.1.1.1": Value(Kind.OCTETS, bytes.fromhex("001122334455"))}
    assert poll(values).kind == "access_point"


def test_a_maker_is_named_from_the_enterprise_number_when_no_profile_says_it():
    found = poll(recording("sharp").values, "sharp")
    assert (found.identity.vendor, found.identity.vendor_from) == (
        "Sharp", "enterprise 2385 in sysObjectID (IANA registry)")
    agent = poll(recording("netvision-rfc").values, "netvision-rfc")  # net-snmp's sysObjectID: Socomec's subtree
    assert (agent.identity.vendor, agent.identity.vendor_from) == (
        "Socomec", "enterprise 4555 in its answers (IANA registry)")


def test_a_device_identified_before_is_not_probed_again_unless_its_sysobjectid_changes():
    values = dict(recording("apc_ap8853").values)
    client = MemoryClient({(ADDRESS, 161): MemoryAgent(values, frozenset({"apc_ap8853"}))})
    remembered = Identifications()
    first = poll(values, "apc_ap8853", client, remembered)
    probes = sum(r.operation == "next" for r in client.requests)
    again = poll(values, "apc_ap8853", client, remembered)
    assert probes == 1 and sum(r.operation == "next" for r in client.requests) == 1
    assert again.power == first.power and again.identity == first.identity
    values["1.3.6.1.2.1.1.2.0"] = oid("1.3.6.1.4.1.318.1.3.27")  # the card moved to a UPS
    client.agents[(ADDRESS, 161)] = MemoryAgent(values, frozenset({"apc_ap8853"}))
    poll(values, "apc_ap8853", client, remembered)
    assert sum(r.operation == "next" for r in client.requests) == 2


def test_a_ups_load_becomes_watts_only_with_its_rating_and_only_as_a_derived_figure():
    """The ABB recording (0 W output at 6 % load: not measured), with and without an upsConfigOutputPower added."""
    plain = poll(recording("abbups_abbups").values, "abbups_abbups")
    assert plain.ups.derived_watts is None
    rated = poll({**recording("abbups_abbups").values, "1.3.6.1.2.1.33.1.9.6.0": integer(10000)}, "abbups_abbups")
    assert (rated.ups.output_watts, rated.ups.rated_watts, rated.ups.derived_watts) == (None, 10000, 600)
    assert "UPS output 600 W derived from 6% load of its 10000 W rating: an estimate, not metered" in rated.notes
    assert DEVICE not in poll_loads(rated)  # an estimate is never metered energy


def test_when_the_standard_and_vendor_poe_figures_disagree_the_standard_is_used_and_both_kept():
    found = poll(recording("iosxe_c9200l").values, "iosxe_c9200l")
    assert (found.poe.consumption_watts, found.poe.vendor_consumption_watts) == (52, 168)
    assert poll_loads(found)[DEVICE].watts == 52
    assert ("PoE consumption: POWER-ETHERNET-MIB says 52 W, the vendor MIB 168 W; the standard's measured figure "
            "is used and the vendor's kept beside it") in found.notes


def test_a_linksys_switch_reports_per_port_poe_from_its_vendor_table():
    """The Cisco CBS250 recording with its RADLAN PoE table moved under Linksys' enterprise number and a
    Linksys sysObjectID: the same MIB, which Linksys ships under 3955 (no Linksys recording exists)."""
    cisco, linksys = "1.3.6.1.4.1.9.6.1.101.108", "1.3.6.1.4.1.3955.1000.201.108"
    moved = {o.replace(cisco, linksys, 1): v for o, v in recording("ciscosb_cbs250-24p-4x-v3").values.items()}
    values = {o: v for o, v in moved.items() if not o.startswith("1.3.6.1.4.1.9.")}
    values["1.3.6.1.2.1.1.2.0"] = oid("1.3.6.1.4.1.3955.1000.201.1")
    found = poll(values, "ciscosb_cbs250-24p-4x-v3")
    assert (found.kind, found.profile, found.identity.vendor) == ("switch", "linksys-poe", "Linksys")
    assert [(p.index, p.watts) for p in found.poe.ports][:2] == [("1.13", 10.767), ("1.14", 8.607)]
    assert found.poe.consumption_watts == 38.61


def test_an_eaton_g3_epdu_chain_reads_its_input_power_and_each_unit_is_an_asset():
    """Built from EATON-EPDU-MIB as Network UPS Tools reads it (no recording exists): two daisy-chained
    units, input power per unit in watts, phase voltage in millivolts and current in milliamps."""
    epdu = "1.3.6.1.4.1.534.6.6.7"
    values = {"1.3.6.1.2.1.1.2.0": oid(f"{epdu}"), "1.3.6.1.2.1.1.1.0": text("Eaton ePDU"),
              f"{epdu}.1.2.1.2.0": text("EMAB03"), f"{epdu}.1.2.1.4.0": text("G358L00123"),
              f"{epdu}.1.2.1.2.1": text("EMAB03"), f"{epdu}.1.2.1.4.1": text("G358L00456"),
              f"{epdu}.3.5.1.4.0.1": integer(512), f"{epdu}.3.5.1.4.1.1": integer(488),
              f"{epdu}.3.2.1.3.0.1.1": integer(230100), f"{epdu}.3.3.1.4.0.1.1": integer(2230),
              f"{epdu}.6.1.1.3.0.1": text("Server A"), f"{epdu}.6.5.1.3.0.1": integer(210)}
    found = poll(values)
    assert (found.kind, found.profile, found.identity.vendor, found.identity.serial) == (
        "pdu", "eaton-epdu", "Eaton", "G358L00123")
    assert (found.power.watts, found.power.voltage_volts, found.power.current_amps) == (1000, 230.1, 2.23)
    assert [(c.model, c.serial) for c in found.chassis] == [("EMAB03", "G358L00123"), ("EMAB03", "G358L00456")]
    assert [(o.index, o.name, o.watts) for o in found.outlets] == [("0.1", "Server A", 210)]
