"""`caretaker snmp discover` and `caretaker snmp targets` against a simulated school subnet: five
devices answering the school's community on 127.0.1.1-5, nothing at 127.0.1.6."""

from __future__ import annotations

import json

import pytest

from tests.controller.snmp.conftest import SCHOOL, SILENT, SUBNET, caretaker, discover


def test_discover_registers_each_device_on_the_subnet_with_the_credential_that_answered(
        database_url, school_subnet, subnet_credentials):
    found = discover(database_url, school_subnet, subnet_credentials)
    by_address = {f["address"]: f for f in found}
    assert set(by_address) == set(school_subnet.addresses.values())
    assert SILENT not in by_address
    assert {f["credential"] for f in found} == {"school"}
    apc = by_address[school_subnet.addresses["apc_ap8853"]]
    assert (apc["kind"], apc["serial"]) == ("pdu", "ZA2001002384")
    konica = by_address[school_subnet.addresses["konica_c250i"]]
    assert (konica["kind"], konica["serial"]) == ("printer", "AA2M021115700")
    assert len({f["device"] for f in found}) == 5
    listed = caretaker(database_url, "targets")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split() == ["ID", "SITE", "ADDRESS", "DEVICE", "KIND", "CREDENTIAL",
                                                     "LAST", "OK", "LAST", "POLL"]
    assert sum(line.endswith(" ok") and " school " in line for line in listed.stdout.splitlines()[1:]) == 5


def test_discovering_again_finds_the_same_devices_and_targets(database_url, school_subnet, subnet_credentials):
    first = discover(database_url, school_subnet, subnet_credentials)
    again = discover(database_url, school_subnet, subnet_credentials)
    assert sorted((f["target"], f["device"]) for f in again) == sorted((f["target"], f["device"]) for f in first)
    listed = caretaker(database_url, "targets", "--json")
    assert listed.returncode == 0, listed.stderr
    targets = json.loads(listed.stdout)
    assert len(targets) == 5
    assert all(t["credential"] == "school" and t["last_error"] is None and t["site"] == "Hillside" for t in targets)


def test_a_community_given_on_the_command_line_is_a_reference_not_the_secret(database_url, school_subnet):
    found = caretaker(database_url, "discover", SUBNET, "--port", str(school_subnet.port), "--community",
                      "env:SNMP_SCHOOL", "--site", "Hillside", "--timeout", "0.3", "--retries", "0", "--json")
    assert found.returncode == 0, found.stderr
    assert len(json.loads(found.stdout)) == 5
    typed = caretaker(database_url, "discover", SUBNET, "--community", SCHOOL, "--site", "Hillside")
    assert typed.returncode == 2
    assert typed.stderr.startswith("caretaker: error: credentials.community-1.community: write secrets as")


@pytest.mark.parametrize(("args", "message"), [
    (["10.0.0.0/8"], "has 16777216 addresses; discover at most 1024"),
    (["not-a-subnet"], "'not-a-subnet' is not a subnet"),
    (["192.0.2.0/28"], "no SNMP credentials are configured for any address in 192.0.2.0/28"),
])
def test_discover_refuses_what_it_cannot_do_in_one_line(database_url, subnet_credentials, args, message):
    refused = caretaker(database_url, "discover", *args, "--credentials", str(subnet_credentials), "--site", "Hillside")
    assert refused.returncode == 2
    assert refused.stderr == f"caretaker: error: {refused.stderr.removeprefix('caretaker: error: ')}"
    assert message in refused.stderr and len(refused.stderr.splitlines()) == 1
