"""`caretaker snmp discover` and `caretaker snmp targets` against a simulated school subnet: seven
devices answering the school's community on 127.0.1.1-7, nothing at 127.0.1.8-14."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import BIN, start_controller
from tests.controller.snmp.conftest import ANSWERED, SCHOOL, SILENT, SUBNET, SUBNET_NAMES, caretaker, discover


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
    assert len({f["device"] for f in found}) == len(SUBNET_NAMES)
    assert {a for a, f in by_address.items() if f["unexplained"]} == {school_subnet.addresses["aix_net-snmp"]}
    listed = caretaker(database_url, "targets")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split() == ["ID", "SITE", "ADDRESS", "DEVICE", "KIND", "CREDENTIAL",
                                                     "LAST", "OK", "LAST", "POLL"]
    ok = [line for line in listed.stdout.splitlines()[1:] if line.endswith(" ok") and " school " in line]
    assert len(ok) == len(SUBNET_NAMES)


def test_discovering_again_finds_the_same_devices_and_targets(database_url, school_subnet, subnet_credentials):
    """Every chassis of the three-switch stack is a device of its own, found again by its place in the
    stack (none reports a serial); the stack stays one target, so its readings stay one."""
    first = discover(database_url, school_subnet, subnet_credentials)
    again = discover(database_url, school_subnet, subnet_credentials)
    assert sorted((f["target"], f["units"]) for f in again) == sorted((f["target"], f["units"]) for f in first)
    listed = caretaker(database_url, "targets", "--json")
    assert listed.returncode == 0, listed.stderr
    targets = json.loads(listed.stdout)
    assert len(targets) == len(SUBNET_NAMES)
    assert all(t["credential"] == "school" and t["last_error"] is None and t["site"] == "Hillside" for t in targets)
    (stack,) = [f for f in first if f["address"] == school_subnet.addresses["iosxe_c9200l"]]
    assert stack["kind"] == "switch" and len(set(stack["units"])) == 3 and stack["units"][0] == stack["device"]
    models = {d["id"]: d["model"] for d in json.loads(subprocess_cli(database_url, "devices", "--json"))}
    assert [models[i] for i in stack["units"]] == ["C9200L-48P-4X", "C9200L-48P-4X", "C9200L-48P-4G"]
    assert len(models) == len(SUBNET_NAMES) + 2


def test_a_community_given_on_the_command_line_is_a_reference_not_the_secret(database_url, school_subnet):
    found = caretaker(database_url, "discover", SUBNET, "--port", str(school_subnet.port), "--community",
                      "env:SNMP_SCHOOL", "--site", "Hillside", "--timeout", "2", "--retries", "1", "--json")
    assert found.returncode == 0, found.stderr
    assert len(json.loads(found.stdout)) == len(SUBNET_NAMES) and found.stderr.strip().endswith(ANSWERED)
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


def test_discover_lists_the_devices_kept_as_host_with_what_they_answered(school_subnet, subnet_credentials, tmp_path):
    database_url = f"sqlite:///{tmp_path / 'caretaker.db'}"  # what is printed does not depend on the database
    found = caretaker(database_url, "discover", SUBNET, "--port", str(school_subnet.port), "--credentials",
                      str(subnet_credentials), "--site", "Hillside", "--timeout", "2", "--retries", "1")
    assert found.returncode == 0, found.stderr
    lines = found.stdout.splitlines()
    server = school_subnet.addresses["aix_net-snmp"]
    start = lines.index("kept as host (no profile recognised them; please report what they answered):")
    assert lines[start + 1:] == [
        f"{server}:{school_subnet.port}",
        "not interpreted: kind guessed host, vendor IBM, sysObjectID 1.3.6.1.4.1.8072.3.2.15",
        "  answered under 1.3.6.1.4.1.2021.4 (UCD-SNMP), which no profile reads",
        "  answered under 1.3.6.1.4.1.2021.10.1 (UCD-SNMP), which no profile reads",
        "  answered under 1.3.6.1.4.1.2021.11 (UCD-SNMP), which no profile reads"]


def test_metrics_count_the_snmp_targets_by_kind_and_those_kept_as_host(database_url, school_subnet,
                                                                       subnet_credentials, tmp_path):
    discover(database_url, school_subnet, subnet_credentials)
    running = start_controller(database_url, tmp_path)
    try:
        text = httpx.get(f"{running.url}/metrics", timeout=10).text
    finally:
        running.stop()
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    kinds = {dict(labels)["kind"]: value for (name, labels), value in samples.items()
             if name == "caretaker_snmp_targets"}
    assert kinds == {"pdu": 2, "switch": 3, "printer": 1, "host": 1}
    assert samples[("caretaker_snmp_targets_kept_as_host", frozenset({("site", "Hillside")}))] == 1


def subprocess_cli(database_url: str, *args: str) -> str:
    done = subprocess.run([str(BIN / "caretaker"), *args, "--database-url", database_url], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout
