"""Device knowledge is data: the bundled profiles load, bad ones are refused on load, code names no vendor."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
import yaml

from controller.snmp.client import Kind, Value
from controller.snmp.credentials import CommunityCredential, Secret
from controller.snmp.memory import MemoryAgent, MemoryClient
from controller.snmp.poller import Poller
from controller.snmp.profiles import DeviceKind, ProfileError, load_profiles, parse_profile
from tests.controller.snmp.conftest import store_for

SNMP_CODE = Path(__file__).resolve().parents[3] / "controller" / "snmp"


def test_the_bundled_profiles_cover_the_families_the_issue_names():
    profiles = load_profiles()
    assert {"printer", "poe-switch", "switch", "access-point", "sensor-pdu", "ups-mib", "generic",  # by capability
            "apc-ups", "apc-rpdu2", "apc-rpdu-legacy", "apc-epdu", "eaton-xups", "eaton-pdu", "cyberpower",
            "ppc-netagent", "socomec-netvision", "raritan-pdu2", "servertech-sentry3", "servertech-sentry4",
            "vertiv-geist", "cisco-poe", "ciscosb-poe", "tplink-poe"} <= set(profiles)
    assert {p.kind for p in profiles.values()} == set(DeviceKind)


def test_kinds_are_matched_on_what_every_device_of_the_kind_answers_not_on_one_object():
    """The Printer-MIB profile must not need prtMarkerLifeCount (7 of 11 recorded printers lack it):
    no profile matches on exact objects alone."""
    for profile in load_profiles().values():
        m = profile.match
        assert not m.present or m.sys_object_id or m.sys_descr or m.answers, profile.name
    with pytest.raises(ProfileError, match="present only narrows a match"):
        parse_profile({"name": "t", "kind": "printer", "match": {"present": ["1.3.6.1.2.1.43.10.2.1.4.1.1"]}}, "t")
    with pytest.raises(ProfileError, match="only a host profile may match every device"):
        parse_profile({"name": "t", "kind": "printer"}, "t.yaml")


def test_code_under_controller_snmp_names_no_vendor():
    vendors = re.compile(r"\b(APC|Sharp|Konica|Zyxel|Advantech|CyberPower|Vertiv|Geist|Sentry|ServerTech|Cisco|ABB|"
                         r"Hewlett|HP|Eaton|Raritan|Liebert|Socomec|Riello|Megatec|PPC|Enlogic|TP-?Link|Linksys|Juniper|"
                         r"Aruba|Ubiquiti|Ruckus|Aerohive|Netgear|D-Link|Brother|Canon|Ricoh|Kyocera|Lexmark|Dell|OKI|"
                         r"Epson|Xerox|Netvision|Generex|Multimatic)\b", re.IGNORECASE)
    hits = [f"{path.name}: {m.group(0)}" for path in SNMP_CODE.glob("*.py") for m in vendors.finditer(path.read_text())]
    assert hits == []


def test_a_child_profile_replaces_its_parent_field_by_field_and_joins_its_identity_in_the_standard_order(tmp_path):
    entity_serial, vendor_serial = "1.3.6.1.2.1.47.1.1.1.1.11", "1.3.6.1.4.1.99.1.0"
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({
        "name": "base", "kind": "host", "identity": {"model": {"get": "1.3.6.1.2.1.1.1.0"},
                                                     "serial": [{"sys_descr": "SN: (\\S+)"}, {"walk": entity_serial}]},
        "power": {"watts": {"get": "1.3.6.1.4.1.99.2.0"}}}))
    (tmp_path / "child.yaml").write_text(yaml.safe_dump({
        "name": "child", "kind": "pdu", "extends": "base", "priority": 5,
        "match": {"sys_object_id": ["1.3.6.1.4.1.99"]}, "identity": {"serial": {"get": vendor_serial},
                                                                     "model": {"only": {"value": "fixed"}}},
        "power": {"watts": {"get": "1.3.6.1.4.1.99.3.0"}}}))
    child = load_profiles(tmp_path)["child"]
    serial = child.scalars["identity"]["serial"]
    assert [s.walk or s.get or s.sys_descr.pattern for s in serial] == [entity_serial, vendor_serial, "SN: (\\S+)"]
    assert [s.value for s in child.scalars["identity"]["model"]] == ["fixed"]  # only: replaced, not joined
    assert [s.get for s in child.scalars["power"]["watts"]] == ["1.3.6.1.4.1.99.3.0"]  # replaced
    assert (child.kind, child.priority, child.match.sys_object_id) == ("pdu", 5, ("1.3.6.1.4.1.99",))


@pytest.mark.parametrize(("files", "message"), [
    ({"a": {"name": "a", "kind": "host", "extends": "missing"}}, "not a profile"),
    ({"a": {"name": "a", "kind": "host", "extends": "b"}, "b": {"name": "b", "kind": "host", "extends": "a"}},
     "extends itself"),
    ({"a": {"name": "other", "kind": "host"}}, "name is the file name"),
])
def test_broken_profile_sets_are_refused_on_load(tmp_path, files, message):
    for name, data in files.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError, match=message):
        load_profiles(tmp_path)


@pytest.mark.parametrize(("section", "message"), [
    ({"power": {"wattz": {"get": "1.3.6.1.2.1.1.1.0"}}}, "power has no field 'wattz'"),
    ({"power": {"watts": {"get": "1.3.6.1.2.1.1.1.0", "scale": "0.1 kWh"}}}, "does not convert"),
    ({"power": {"watts": {"get": "1.3.6.1.2.1.1.1.0", "scale": "10 furlongs"}}}, "unknown unit"),
    ({"power": {"watts": {"get": "1.3.6.1.2.1.1.1.0", "walk": "1.3.6.1.2.1.1"}}}, "exactly one of"),
    ({"power": {"watts": {"get": "sysDescr.0"}}}, "not a numeric OID"),
    ({"power": {"watts": {"get": "1.3.6.1.2.1.1.1.0", "reduce": "sum"}}}, "only applies to walk"),
    ({"identity": {"serial": {"walk": "1.3.6.1.2.1.1", "reduce": "sum"}}}, "needs a numeric field"),
    ({"identity": {"serial": {"sys_descr": "SN: \\S+"}}}, r"needs a \(group\)"),
    ({"identity": {"serial": {"get": "1.3.6.1.2.1.1.1.0", "scale": 2}}}, "scale and decimals apply to numbers"),
    ({"outlets": {"powered": {"walk": "1.3.6.1.4.1.1.1"}}}, "needs a map"),
    ({"outlets": {"powered": {"walk": "1.3.6.1.4.1.1.1", "map": {"1": "on"}}}}, "true or false"),
    ({"outlets": {"watts": {"walk": "1.3.6.1.4.1.1.1", "reduce": "max"}}}, "a table field is a column"),
    ({"outlets": {"watts": {"get": "1.3.6.1.4.1.1.1.0"}}}, "a table field is a column"),
    ({"power": {"watts": {"get": "1.3.6.1.4.1.1.1.0", "suffix": 5}}}, "suffix applies to walk"),
    ({"agent": "toaster"}, "agent is device"),
    ({"printer": {"errors": {"get": "1.3.6.1.2.1.25.3.5.1.2.1"}}}, "needs bits"),
    ({"kind": "toaster"}, "kind must be one of"),
    ({"colour": "blue"}, "unknown key"),
])
def test_a_mistake_in_a_profile_is_named_on_load(section, message):
    data = {"name": "t", "kind": "pdu", "match": {"sys_object_id": ["1.3.6.1.4.1.9"]}, **section}
    with pytest.raises(ProfileError, match=message):
        parse_profile(data, "t.yaml")


def test_scales_with_units_convert_to_the_fields_base_unit():
    profile = parse_profile({"name": "t", "kind": "pdu", "match": {"sys_object_id": ["1.3.6.1.4.1.9"]}, "power": {
        "watts": {"get": "1.3.6.1.4.1.1.1.0", "scale": "10 W"},
        "energy_joules": {"get": "1.3.6.1.4.1.1.2.0", "scale": "0.1 kWh"},
        "current_amps": {"get": "1.3.6.1.4.1.1.3.0", "scale": "100 mA"}}}, "t.yaml")
    power = profile.scalars["power"]
    assert power["watts"][0].scale == 10
    assert power["energy_joules"][0].scale == pytest.approx(360_000)
    assert power["current_amps"][0].scale == pytest.approx(0.1)


def test_yaml_booleans_cannot_sneak_in_as_field_names():
    """YAML 1.1 reads a key `on:` as True; the vocabulary avoids such names and the loader says so."""
    data = yaml.safe_load("name: t\nkind: host\noutlets:\n  on: {walk: 1.3.6.1.4.1.1, map: {1: true}}\n")
    with pytest.raises(ProfileError, match="outlets has no field True"):
        parse_profile(data, "t.yaml")



def test_an_hp_printer_is_recognised_and_its_serial_loses_the_00_prefix():
    values = {"1.3.6.1.2.1.1.2.0": Value(Kind.OID, "1.3.6.1.4.1.11.2.3.9.1"),
              "1.3.6.1.2.1.43.10.2.1.4.1.1": Value(Kind.COUNTER32, 51234),
              "1.3.6.1.2.1.43.5.1.1.17.1": Value(Kind.OCTETS, b"00CNB1R12345")}
    client = MemoryClient({("10.0.0.3", 161): MemoryAgent(values, frozenset({"hp"}))})
    store = store_for(("10.0.0.3", [CommunityCredential("printers", Secret("hp", "env:HP"))]))
    poll = asyncio.run(Poller(client, load_profiles(), store).poll("10.0.0.3"))
    assert (poll.profile, poll.identity.vendor, poll.identity.serial) == ("hp-printer", "HP", "CNB1R12345")
    assert poll.printer.life_count == 51234
