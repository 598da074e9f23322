"""`caretaker snmp poll` and `caretaker snmp encrypt` as an operator uses them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import BIN
from tests.controller.snmp.conftest import V3_AUTH, V3_PRIV, V3_USER, address_of

COMMUNITY = "konica_c250i"  # snmpsim's community for the recording; a secret as far as the CLI knows


def caretaker(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "caretaker"), "snmp", *args], capture_output=True, text=True, input=stdin,
                          timeout=60)


@pytest.fixture
def credentials(tmp_path: Path) -> Path:
    (tmp_path / "printers.secret").write_text(COMMUNITY + "\n")
    path = tmp_path / "snmp-credentials.yaml"
    path.write_text("credentials:\n  printers: {version: 2c, community: file:printers.secret}\n"
                    "targets:\n  - {subnet: 127.0.0.0/24, use: [printers]}\n")
    return path


def test_poll_prints_what_the_device_reports_without_its_community(snmpsim, credentials):
    polled = caretaker("poll", address_of("konica_c250i"), "--port", str(snmpsim.port),
                       "--credentials", str(credentials), "--json")
    assert polled.returncode == 0, polled.stderr
    result = json.loads(polled.stdout)
    assert (result["kind"], result["profile"], result["credential"]) == ("printer", "konica-printer", "printers")
    assert (result["identity"]["serial"], result["printer"]["life_count"]) == ("AA2M021115700", 33810)
    assert COMMUNITY not in polled.stdout + polled.stderr


def test_poll_without_json_is_a_summary_for_people(snmpsim, credentials):
    polled = caretaker("poll", address_of("konica_c250i"), "--port", str(snmpsim.port),
                       "--credentials", str(credentials))
    assert polled.returncode == 0, polled.stderr
    assert "serial AA2M021115700" in polled.stdout and "Toner (Black): 86%" in polled.stdout


def test_an_address_no_credential_is_configured_for_is_not_polled(credentials):
    polled = caretaker("poll", "192.0.2.10", "--credentials", str(credentials))
    assert polled.returncode == 1
    assert polled.stdout.strip() == "192.0.2.10:161: no SNMP credentials are configured for 192.0.2.10"


def test_a_missing_credentials_file_is_a_one_line_error(tmp_path):
    polled = caretaker("poll", "127.0.0.1", "--credentials", str(tmp_path / "absent.yaml"))
    assert polled.returncode == 2
    assert polled.stderr.startswith("caretaker: error: cannot read") and len(polled.stderr.splitlines()) == 1


def test_encrypt_makes_a_secret_the_credentials_file_can_use(snmpsim, tmp_path):
    encrypted = caretaker("encrypt", "--key-file", str(tmp_path / "snmp.key"), stdin=COMMUNITY + "\n")
    assert encrypted.returncode == 0, encrypted.stderr
    token = encrypted.stdout.strip()
    assert token.startswith("fernet:") and COMMUNITY not in encrypted.stdout
    (tmp_path / "creds.yaml").write_text(yaml.safe_dump({
        "key": "file:snmp.key", "credentials": {"p": {"version": "2c", "community": token}},
        "targets": [{"address": address_of("konica_c250i"), "use": ["p"]}]}))
    polled = caretaker("poll", address_of("konica_c250i"), "--port", str(snmpsim.port),
                       "--credentials", str(tmp_path / "creds.yaml"), "--json")
    assert polled.returncode == 0, polled.stderr
    assert json.loads(polled.stdout)["identity"]["serial"] == "AA2M021115700"


def test_poll_with_store_registers_the_device_and_keeps_the_reading(snmpsim, credentials, tmp_path):
    database = f"sqlite:///{tmp_path / 'caretaker.db'}"
    stored = caretaker("poll", address_of("konica_c250i"), "--port", str(snmpsim.port), "--credentials",
                       str(credentials), "--store", "--site", "Hillside", "--database-url", database)
    assert stored.returncode == 0, stored.stderr
    assert stored.stderr.strip() == "stored: target 1, device 1"
    listed = caretaker("targets", "--json", "--database-url", database)
    (target,) = json.loads(listed.stdout)
    assert (target["address"], target["kind"], target["credential"], target["site"]) == (
        address_of("konica_c250i"), "printer", "printers", "Hillside")
    assert target["last_ok_at"] is not None and target["last_error"] is None


def test_poll_takes_a_community_on_the_command_line_as_a_reference(snmpsim):
    polled = subprocess.run([str(BIN / "caretaker"), "snmp", "poll", address_of("netgear"), "--port", str(snmpsim.port),
                             "--community", "env:SWITCH_COMMUNITY", "--json"], capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin", "SWITCH_COMMUNITY": "netgear"})
    assert polled.returncode == 0, polled.stderr
    result = json.loads(polled.stdout)
    assert (result["kind"], result["identity"]["model"], result["credential"]) == ("switch", "GS724Tv4", "community-1")
    typed = caretaker("poll", address_of("netgear"), "--community", "netgear")
    assert typed.returncode == 2 and "write secrets as" in typed.stderr


def test_poll_takes_an_snmpv3_user_on_the_command_line(snmpsim):
    polled = subprocess.run([str(BIN / "caretaker"), "snmp", "poll", address_of("apc_smtl1000-nmc3"), "--port",
                             str(snmpsim.port), "--v3-user", V3_USER, "--v3-auth-key", "env:AUTH", "--v3-priv-key",
                             "env:PRIV", "--v3-auth-protocol", "SHA", "--v3-priv-protocol", "AES", "--v3-context",
                             "apc_smtl1000-nmc3", "--json"], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "AUTH": V3_AUTH, "PRIV": V3_PRIV})
    assert polled.returncode == 0, polled.stderr
    result = json.loads(polled.stdout)
    assert (result["credential"], result["identity"]["serial"], result["ups"]["load_percent"]) == (
        f"v3-{V3_USER}", "AS2233161027", 37.8)


def test_poll_ends_with_what_the_device_answered_that_no_profile_interpreted(snmpsim, credentials):
    """A Netgear smart switch answers its own MIB, which no profile reads: the operator is told where."""
    (credentials.parent / "printers.secret").write_text("netgear\n")
    polled = caretaker("poll", address_of("netgear"), "--port", str(snmpsim.port), "--credentials", str(credentials))
    assert polled.returncode == 0, polled.stderr
    lines = polled.stdout.splitlines()
    tail = lines[lines.index(next(line for line in lines if line.startswith("not interpreted:"))):]
    assert tail == ["not interpreted: kind guessed switch, vendor Netgear, sysObjectID 1.3.6.1.4.1.4526.100.4.32",
                    "  answered under 1.3.6.1.4.1.4526.10.1 (Netgear), which no profile reads",
                    "  answered under 1.3.6.1.4.1.4526.10.43 (Netgear), which no profile reads"]
    as_json = json.loads(caretaker("poll", address_of("netgear"), "--port", str(snmpsim.port), "--credentials",
                                   str(credentials), "--json").stdout)
    assert list(as_json)[-1] == "unexplained"
    assert as_json["unexplained"] == {
        "kind_guessed": "switch", "vendor": "Netgear", "sys_object_id": "1.3.6.1.4.1.4526.100.4.32",
        "subtrees": [{"oid": "1.3.6.1.4.1.4526.10.1", "name": "Netgear"},
                     {"oid": "1.3.6.1.4.1.4526.10.43", "name": "Netgear"}]}


def test_poll_names_special_supply_levels_and_shows_every_unit_of_a_stack(snmpsim, credentials):
    (credentials.parent / "printers.secret").write_text("jetdirect_m880\n")
    printer = caretaker("poll", address_of("jetdirect_m880"), "--port", str(snmpsim.port), "--credentials",
                        str(credentials))
    assert "  Stapler 1 HP C8091A: some remaining" in printer.stdout.splitlines()
    assert "  Fuser Kit HP 110V-C1N54A, 220V-C1N58A: 84%" in printer.stdout.splitlines()  # decoded from hex
    (credentials.parent / "printers.secret").write_text("iosxe_c9200l\n")
    stack = caretaker("poll", address_of("iosxe_c9200l"), "--port", str(snmpsim.port), "--credentials",
                      str(credentials))
    lines = stack.stdout.splitlines()
    assert lines[lines.index("3 units, each an asset of its own:") + 1:][:3] == [
        "  unit Switch 1, model C9200L-48P-4X, serial not reported",
        "  unit Switch 2, model C9200L-48P-4X, serial not reported",
        "  unit Switch 3, model C9200L-48P-4G, serial not reported"]
    assert "PoE: budget 2220 W, drawn 52 W, vendor MIB says 168 W" in lines
