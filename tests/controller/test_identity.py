"""Which device is this? The situations a school's estate produces, and the verdict each must get."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from agent.protocol import Inventory, Nic, OperatingSystem, Smbios
from controller.register.identity import (
    MATCH_THRESHOLD,
    Fingerprint,
    FingerprintIndex,
    fingerprint_of,
    match,
    normalise_hostname,
    normalise_mac,
    normalise_serial,
    normalise_uuid,
)


def pc(hostname: str = "ROOM12-PC01", *, serial: str | None = None, uuid: str | None = None,
       machine_id: str | None = None, vendor: str | None = "HP", model: str | None = "ProDesk 400 G7",
       nics: tuple[tuple[str, str], ...] = ()) -> Inventory:
    """An inventory as an agent would send it."""
    return Inventory(hostname=hostname, os=OperatingSystem("Windows", "10.0.22631"), machine_id=machine_id,
                     nics=tuple(Nic(name, mac) for name, mac in nics),
                     smbios=Smbios(vendor=vendor, model=model, serial=serial, uuid=uuid))


ROOM12_PC01 = pc(serial="CZC1234XYZ", uuid="4C4C4544-0042-3510-8052-B7C04F4E3732",
                 machine_id="0f2a6d9b3c7e4f1a8b5c2d9e6f3a0b7c",
                 nics=(("Ethernet", "3C-52-82-11-22-33"), ("Wi-Fi", "A4-C3-F0-44-55-66")))
PLACEHOLDER_SERIAL = "To be filled by O.E.M."
AMI_UUID = "03000200-0400-0500-0006-000700080009"


def lab_pc(n: int) -> Inventory:
    """A cheap white-box desktop: placeholder serial, vendor and UUID; only its NIC and name are its own."""
    return pc(f"LAB-PC{n:02d}", serial=PLACEHOLDER_SERIAL, uuid=AMI_UUID, vendor="To Be Filled By O.E.M.",
              model="To Be Filled By O.E.M.", machine_id=f"{n:032x}", nics=(("eth0", f"00:e0:4c:00:01:{n:02x}"),))


@dataclass(frozen=True)
class Case:
    situation: str
    known: dict[int, Inventory]
    candidate: Inventory
    device_id: int | None  # the verdict: an existing device, or None for "create a new one"
    conflict_with: int | None = None
    must_say: tuple[str, ...] = field(default=())  # fragments the evidence shows a human


CASES = [
    Case("re-imaged machine: new machine-id, same serial, UUID and MACs",
         {17: ROOM12_PC01},
         pc(serial="CZC1234XYZ", uuid="4c4c4544-0042-3510-8052-b7c04f4e3732", machine_id="a" * 31 + "1",
            nics=(("Ethernet", "3c:52:82:11:22:33"), ("Wi-Fi", "a4:c3:f0:44:55:66"))),
         17, must_say=("serial CZC1234XYZ matches", "2 of 2 MACs match", "hostname room12-pc01 matches")),
    Case("re-imaged single-NIC machine whose SMBIOS the agent cannot read (non-root Linux)",
         {3: pc("lib-pc02", machine_id="1" * 31 + "2", vendor=None, model=None,
                nics=(("enp3s0", "3c:52:82:99:00:01"),))},
         pc("lib-pc02", machine_id="2" * 31 + "3", vendor=None, model=None, nics=(("enp3s0", "3c:52:82:99:00:01"),)),
         3),
    Case("cloned image: same machine-id and UUID, different MACs and serial",
         {17: ROOM12_PC01},
         pc("ROOM12-PC02", serial="CZC9876ABC", uuid="4C4C4544-0042-3510-8052-B7C04F4E3732",
            machine_id="0f2a6d9b3c7e4f1a8b5c2d9e6f3a0b7c", nics=(("Ethernet", "3c:52:82:77:88:99"),)),
         None, conflict_with=17, must_say=("same machine-id and SMBIOS UUID as device 17", "cloned disk image")),
    Case("cloned image on machines whose serial cannot be read: MACs tell them apart",
         {17: pc(machine_id="0f2a6d9b3c7e4f1a8b5c2d9e6f3a0b7c", vendor=None, nics=(("eth0", "3c:52:82:11:22:33"),))},
         pc(machine_id="0f2a6d9b3c7e4f1a8b5c2d9e6f3a0b7c", vendor=None, nics=(("eth0", "3c:52:82:44:44:44"),)),
         None, conflict_with=17, must_say=("same machine-id as device 17 but different MACs",)),
    Case("swapped NIC: one MAC changed, serial the same",
         {17: ROOM12_PC01},
         pc(serial="CZC1234XYZ", uuid="4c4c4544-0042-3510-8052-b7c04f4e3732",
            machine_id="0f2a6d9b3c7e4f1a8b5c2d9e6f3a0b7c",
            nics=(("Ethernet", "3c:52:82:de:ad:01"), ("Wi-Fi", "a4:c3:f0:44:55:66"))),
         17, must_say=("1 of 2 MACs match",)),
    Case("placeholder serial and UUID shared by 50 cheap desktops",
         {n: lab_pc(n) for n in range(1, 51)},
         lab_pc(51),
         None),
    Case("hostname reused on new hardware",
         {17: ROOM12_PC01},
         pc(serial="5CG3301QRS", uuid="9a1e2f7c-5b3d-4e8a-9c0f-1d2e3f4a5b6c", machine_id="c" * 32,
            nics=(("Ethernet", "98:fa:9b:00:00:01"),)),
         None),
    Case("hostname reused on a new laptop plugged into the old one's dock: the serial vetoes the dock's MAC",
         {17: pc(serial="CZC1234XYZ", nics=(("Ethernet 2", "64:4b:f0:10:20:30"), ("Wi-Fi", "a4:c3:f0:44:55:66")))},
         pc(serial="5CG3301QRS", nics=(("Ethernet 2", "64:4b:f0:10:20:30"), ("Wi-Fi", "f4:b7:e2:01:02:03"))),
         None),
    Case("docker0, veth and Hyper-V switch MACs shared by two machines do not make them one",
         {8: pc("dev-01", vendor=None, nics=(("docker0", "02:42:ac:11:00:01"), ("veth1a2b3c", "5a:11:22:33:44:55"),
                                             ("vEthernet (Default Switch)", "00:15:5d:01:02:03"),
                                             ("eth0", "3c:52:82:00:00:08")))},
         pc("dev-02", vendor=None, nics=(("docker0", "02:42:ac:11:00:01"), ("veth1a2b3c", "5a:11:22:33:44:55"),
                                         ("vEthernet (Default Switch)", "00:15:5d:01:02:03"),
                                         ("eth0", "3c:52:82:00:00:09"))),
         None),
    Case("every install of Cisco AnyConnect has the same virtual adapter MAC",
         {4: pc("staff-lt01", nics=(("Ethernet 3", "00:05:9a:3c:7a:00"),))},
         pc("staff-lt02", nics=(("Ethernet 3", "00:05:9A:3C:7A:00"),)),
         None),
    Case("everything unknown", {1: pc("localhost", vendor=None, model=None)}, pc("localhost", vendor=None, model=None),
         None),
    Case("a clone that was already split off is recognised as itself, and the clone stays visible",
         {17: ROOM12_PC01,
          18: pc("ROOM12-PC02", serial="CZC9876ABC", uuid="4c4c4544-0042-3510-8052-b7c04f4e3732",
                 machine_id="0f2a6d9b3c7e4f1a8b5c2d9e6f3a0b7c", nics=(("Ethernet", "3c:52:82:77:88:99"),))},
         pc("ROOM12-PC02", serial="CZC9876ABC", uuid="4c4c4544-0042-3510-8052-b7c04f4e3732",
            machine_id="0f2a6d9b3c7e4f1a8b5c2d9e6f3a0b7c", nics=(("Ethernet", "3c:52:82:77:88:99"),)),
         18, conflict_with=17),
    Case("a duplicate record already exists: the tie goes to the older (lower) id",
         {42: ROOM12_PC01, 9: ROOM12_PC01},
         ROOM12_PC01,
         9, must_say=("tied with device 42",)),
    Case("serials from different makers are not compared",
         {5: pc("a", serial="ABC12345", vendor="Dell Inc.")},
         pc("b", serial="ABC12345", vendor="LENOVO"),
         None),
    Case("the maker's name is spelt differently by different firmware",
         {5: pc("a", serial="CZC1234XYZ", vendor="Hewlett-Packard")},
         pc("b", serial="czc1234xyz ", vendor="HP Inc."),
         5),
]


@pytest.mark.parametrize("case", CASES, ids=[c.situation for c in CASES])
def test_which_device_is_this(case: Case) -> None:
    known = [(device_id, fingerprint_of(inv)) for device_id, inv in case.known.items()]
    result = match(fingerprint_of(case.candidate), known)

    assert result.device_id == case.device_id, result.evidence
    assert result.is_new == (case.device_id is None)
    assert (result.conflict.device_id if result.conflict else None) == case.conflict_with, result.evidence
    assert result.evidence, "every verdict explains itself"
    for fragment in case.must_say:
        assert any(fragment in line for line in result.evidence), (fragment, result.evidence)
    if case.device_id is not None:
        assert result.score >= MATCH_THRESHOLD


@pytest.mark.parametrize("case", CASES, ids=[c.situation for c in CASES])
def test_the_index_gives_the_same_verdicts(case: Case) -> None:
    known = [(device_id, fingerprint_of(inv)) for device_id, inv in case.known.items()]
    candidate = fingerprint_of(case.candidate)
    assert FingerprintIndex(known).match(candidate) == match(candidate, known)


def test_the_index_agrees_with_a_full_scan_over_a_messy_estate() -> None:
    """Shared hostnames, moved docks, clones and duplicates, drawn at random from small pools."""
    rng = random.Random(20260216)

    def draw() -> Fingerprint:
        return Fingerprint(
            uuid=rng.choice([None, *(f"{i:08x}-0000-4000-8000-000000000001" for i in range(1, 40))]),
            serial=rng.choice([None, *(f"CZC{i:07d}" for i in range(40))]),
            machine_id=rng.choice([None, *(f"{i:032x}" for i in range(1, 30))]),
            macs=frozenset(rng.sample([f"3c:52:82:00:00:{i:02x}" for i in range(60)], rng.randint(0, 3))),
            hostname=rng.choice([None, *(f"room{i}-pc01" for i in range(30))]),
            vendor=rng.choice([None, "hp", "dell"]),
        )

    known = [(device_id, draw()) for device_id in range(1, 301)]
    index = FingerprintIndex(known)
    for device_id in range(1, 301, 3):
        index.remove(device_id)
    remaining = [(i, fp) for i, fp in known if i % 3 != 1]
    assert len(index) == len(remaining)

    verdicts = set()
    for _ in range(500):
        candidate = draw()
        expected = match(candidate, remaining)
        assert index.match(candidate) == expected
        verdicts.add((expected.is_new, expected.conflict is not None))
    assert len(verdicts) >= 3, "the estate should exercise matches, new devices and conflicts"


def test_replacing_a_fingerprint_forgets_the_old_identifiers() -> None:
    old = fingerprint_of(ROOM12_PC01)
    index = FingerprintIndex([(17, old)])
    index.add(17, fingerprint_of(pc("room12-pc01", serial="5CG3301QRS", nics=(("eth0", "98:fa:9b:00:00:01"),))))

    assert index.match(old).device_id is None
    assert index.match(fingerprint_of(pc(serial="5CG3301QRS"))).device_id == 17


def test_near_misses_are_offered_for_the_merge_queue() -> None:
    known = [(17, fingerprint_of(ROOM12_PC01))]
    dock_mac_only = fingerprint_of(pc("other", vendor=None, nics=(("Ethernet", "3c:52:82:11:22:33"),)))
    result = match(dock_mac_only, known)

    assert result.is_new
    assert [s.device_id for s in result.suspects] == [17]
    assert 0 < result.suspects[0].score < MATCH_THRESHOLD


def test_what_was_ignored_is_explained() -> None:
    fingerprint = fingerprint_of(lab_pc(7))
    notes = " | ".join(fingerprint.notes)

    assert fingerprint.serial is None and fingerprint.uuid is None and fingerprint.vendor is None
    assert "serial 'To be filled by O.E.M.' ignored" in notes
    assert "AMI BIOS placeholder" in notes


def test_an_inventory_with_nothing_identifying_still_fingerprints() -> None:
    fingerprint = fingerprint_of(Inventory(hostname="localhost", os=OperatingSystem("Linux", "")))
    assert fingerprint == Fingerprint()


# --- Normalisation, one table per identifier ---------------------------------------------------------


@pytest.mark.parametrize(("raw", "vendor", "expected"), [
    ("CZC1234XYZ", "HP", "CZC1234XYZ"),
    ("  czc1234xyz ", "HP", "CZC1234XYZ"),
    ("00CNB1K12345", "Hewlett-Packard", "CNB1K12345"),  # HP printer over SNMP
    ("00CNB1K12345", "Brother", "00CNB1K12345"),  # only HP's quirk is undone
    ("Default string", None, None),
    ("To be filled by O.E.M.", None, None),
    ("TO BE FILLED BY OEM", None, None),
    ("System Serial Number", None, None),
    ("Chassis Serial Number", None, None),
    ("O.E.M.", None, None),
    ("None", None, None),
    ("Not Specified", None, None),
    ("0123456789", None, None),
    ("123456789", None, None),
    ("1234567890", None, None),
    ("00000000", None, None),
    ("0000-0000-0000", None, None),
    ("XXXXXXXXXX", None, None),
    ("", None, None),
    ("   ", None, None),
    ("A1", None, None),
    (None, None, None),
    ("VMware-56 4d 8a 3b", "VMware, Inc.", "VMWARE-56 4D 8A 3B"),
])
def test_serials(raw: str | None, vendor: str | None, expected: str | None) -> None:
    assert normalise_serial(raw, vendor) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("4C4C4544-0042-3510-8052-B7C04F4E3732", "4c4c4544-0042-3510-8052-b7c04f4e3732"),
    ("{4C4C4544-0042-3510-8052-B7C04F4E3732}", "4c4c4544-0042-3510-8052-b7c04f4e3732"),
    ("4c4c454400423510 8052b7c04f4e3732", "4c4c4544-0042-3510-8052-b7c04f4e3732"),
    ("00000000-0000-0000-0000-000000000000", None),
    ("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", None),
    ("03000200-0400-0500-0006-000700080009", None),
    ("00020003-0004-0005-0006-000700080009", None),
    ("11111111-1111-1111-1111-111111111111", None),
    ("Not Settable", None),
    ("", None),
])
def test_smbios_uuids(raw: str, expected: str | None) -> None:
    assert normalise_uuid(raw) == expected


@pytest.mark.parametrize(("interface", "mac", "kept"), [
    ("eth0", "3c:52:82:11:22:33", True),
    ("Ethernet", "3C-52-82-11-22-33", True),
    ("en0", "3c52.8211.2233", True),
    ("ens192", "00:50:56:9a:00:01", True),  # a VMware guest's own NIC identifies the VM
    ("lo", "00:00:00:00:00:00", False),
    ("Loopback Pseudo-Interface 1", "00:00:00:00:00:01", False),
    ("docker0", "02:42:ac:11:00:01", False),
    ("docker0", "3c:52:82:11:22:34", False),  # by name, whatever the MAC
    ("veth9f3e2a1", "3c:52:82:11:22:35", False),
    ("br-5e1f2a3b4c5d", "3c:52:82:11:22:36", False),
    ("virbr0", "52:54:00:12:34:56", False),
    ("vEthernet (Default Switch)", "00:15:5d:01:02:03", False),
    ("VMware Network Adapter VMnet8", "00:50:56:c0:00:08", False),
    ("tun0", "3c:52:82:11:22:37", False),
    ("wg0", "3c:52:82:11:22:38", False),
    ("tailscale0", "3c:52:82:11:22:39", False),
    ("Ethernet 3", "00:05:9a:3c:7a:00", False),  # Cisco AnyConnect
    ("Wi-Fi", "da:a1:19:00:00:01", False),  # randomised (locally administered)
    ("eth1", "01:00:5e:00:00:01", False),  # multicast
    ("eth2", "00:00:00:00:00:00", False),
    ("eth3", "not-a-mac", False),
])
def test_only_physical_macs_identify_a_machine(interface: str, mac: str, kept: bool) -> None:
    fingerprint = fingerprint_of(pc(nics=((interface, mac),)))
    assert (normalise_mac(mac) in fingerprint.macs) == kept
    assert len(fingerprint.notes) == (0 if kept else 1)


@pytest.mark.parametrize(("raw", "expected"), [
    ("ROOM12-PC01", "room12-pc01"),
    ("room12-pc01.school.internal", "room12-pc01"),
    ("Room12-PC01.", "room12-pc01"),
    ("localhost", None),
    ("localhost.localdomain", None),
    ("MINWINPC", None),
    ("raspberrypi", None),
    ("10.0.12.34", None),
    ("fe80::1", None),
])
def test_hostnames(raw: str, expected: str | None) -> None:
    assert normalise_hostname(raw) == expected
