"""Which device is this? Identity is evidence, not a key (ARCHITECTURE.md).

No single identifier survives a school's estate: firmware ships placeholder serials and UUIDs, a
re-image gives a machine a new machine-id, a cloned image gives fifty machines the same one, docks and
USB adaptors carry a MAC from laptop to laptop, and names like "ROOM12-PC01" are reused on new
hardware. So every identifier is normalised, the known-bogus values are dropped (the rules are data,
each with its reason, so an engineer can see why a value was ignored), and the rest is weighed.

The guiding asymmetry: a false split costs one click in the merge queue; a false merge silently
welds two machines' energy, lifecycle and audit histories together. When the evidence is thin, or
contradicts itself, the answer is "new device".

Pure functions and dataclasses only: the controller stores fingerprints and calls :func:`match` or a
:class:`FingerprintIndex`; nothing here touches a database or a framework.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from agent.protocol import Inventory

# --- Scoring -----------------------------------------------------------------------------------------
# Weights are points added per piece of agreeing evidence; negative weights are contradictions that
# only two different machines (or a motherboard swap, which a human should confirm) can produce.
# A known device is the same machine when its total reaches MATCH_THRESHOLD.
#
#   evidence alone                           points  merges on its own?
#   SMBIOS UUID (bogus ones already dropped)     50  yes: written by the board maker, survives re-imaging
#   serial, same vendor                          50  yes: serials are unique within a vendor
#   serial, a vendor unknown                     40  no: needs one more fact (e.g. the hostname)
#   machine-id                                   30  no: a re-image changes it, a clone shares it
#   each shared physical MAC                     30  no: docks and USB adaptors move between laptops
#   hostname                                     20  no: schools reuse names on new hardware
#   serial differs (comparable vendors)         -60  a different machine
#   SMBIOS UUID differs                         -40  a different board
#
# Consequences the tests pin down: a re-imaged machine (new machine-id, same serial and MACs) scores
# well over the threshold; a swapped NIC still matches on serial/UUID; a reused hostname plus a dock's
# MAC (50) is vetoed by the new laptop's different serial; a single-NIC machine whose SMBIOS the agent
# cannot read (non-root Linux) is still recognised by MAC + hostname or MAC + machine-id.
UUID_MATCH = 50
SERIAL_MATCH = 50
SERIAL_MATCH_VENDOR_UNKNOWN = 40
MACHINE_ID_MATCH = 30
MAC_MATCH = 30
HOSTNAME_MATCH = 20
SERIAL_DIFFERS = -60
UUID_DIFFERS = -40
MATCH_THRESHOLD = 50
# Near misses offered to a human for the merge queue, best first.
SUSPECT_LIMIT = 5


# --- Rules as data -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A value pattern to ignore (or rewrite) and the reason shown to whoever wonders why."""

    pattern: re.Pattern[str]
    reason: str


def _rule(pattern: str, reason: str) -> Rule:
    return Rule(re.compile(pattern, re.IGNORECASE), reason)


def _key(text: str) -> str:
    """Placeholders come with every spacing and punctuation ("To Be Filled By O.E.M. "), so compare letters
    and digits only."""
    return re.sub(r"[^0-9A-Z]", "", text.upper())


_FIRMWARE_PLACEHOLDER = "firmware placeholder the maker never filled in"
_WITHHELD = "withheld: how scrubbed SNMP recordings stand in for a value"

# Compared by _key(), so "To be filled by O.E.M." also catches "TO BE FILLED BY OEM".
PLACEHOLDER_SERIALS: dict[str, str] = {
    "Default string": _FIRMWARE_PLACEHOLDER + " (AMI BIOS default)",
    "To be filled by O.E.M.": _FIRMWARE_PLACEHOLDER + " (AMI BIOS default)",
    "System Serial Number": _FIRMWARE_PLACEHOLDER,
    "Chassis Serial Number": _FIRMWARE_PLACEHOLDER,
    "Base Board Serial Number": _FIRMWARE_PLACEHOLDER,
    "Serial Number": _FIRMWARE_PLACEHOLDER,
    "O.E.M.": _FIRMWARE_PLACEHOLDER,
    "None": "the firmware says there is none",
    "Null": "the firmware says there is none",
    "Empty": "the firmware says there is none",
    "Not Specified": "the firmware says there is none",
    "Not Applicable": "the firmware says there is none",
    "Not Available": "the firmware says there is none",
    "N/A": "the firmware says there is none",
    "Unknown": "the firmware says there is none",
    "Invalid": "the firmware says there is none",
    "Default": _FIRMWARE_PLACEHOLDER,
    "To be determined": _FIRMWARE_PLACEHOLDER,
    "TBD": _FIRMWARE_PLACEHOLDER,
    "Not Supported": "the device says there is none",
    "<private>": _WITHHELD,
}
_PLACEHOLDER_SERIAL_KEYS = {_key(text): reason for text, reason in PLACEHOLDER_SERIALS.items()}

# Matched in full against _key(serial).
BOGUS_SERIAL_PATTERNS: tuple[Rule, ...] = (
    _rule(r"", "empty"),
    _rule(r"(.)\1*", "one character repeated (all zeros, all X…): a placeholder"),
    _rule(r"0?12345(6(7(8(90?)?)?)?)?", "counting digits (0123456789): a placeholder"),
    _rule(r"[A-Z]*(0[A-Z]*)?1[A-Z]*2[A-Z]*3[A-Z]*4[A-Z]*5([A-Z]*6([A-Z]*7([A-Z]*8([A-Z]*9)?)?)?)?[A-Z]*",
          "its digits count 1-2-3-4-5 among letters: a documentation or test value (AB123CD45E, MKRA012345)"),
    _rule(r".{1,3}", "too short to tell machines apart"),
)

# Vendor quirks that wrap a real serial: rewrite to the serial on the label. Group 1 is the serial.
SERIAL_REWRITES: dict[str, tuple[Rule, ...]] = {
    "hp": (
        _rule(r"00([A-Z]{2}[A-Z0-9]{8})",
              "HP printers report the 10-character serial with a '00' prefix over SNMP"),
    ),
}

# Keys (by _key) of vendor/model strings that name nobody.
PLACEHOLDER_NAMES: dict[str, str] = {
    "To be filled by O.E.M.": _FIRMWARE_PLACEHOLDER,
    "Default string": _FIRMWARE_PLACEHOLDER,
    "System manufacturer": _FIRMWARE_PLACEHOLDER,
    "System Product Name": _FIRMWARE_PLACEHOLDER,
    "System Version": _FIRMWARE_PLACEHOLDER,
    "O.E.M.": _FIRMWARE_PLACEHOLDER,
    "Not Specified": "the firmware says there is none",
    "Not Applicable": "the firmware says there is none",
    "None": "the firmware says there is none",
    "Unknown": "the firmware says there is none",
    "<private>": _WITHHELD,
}
_PLACEHOLDER_NAME_KEYS = {_key(text): reason for text, reason in PLACEHOLDER_NAMES.items()}

# Words that vary between tools and firmware versions for the same maker ("Dell Inc." / "Dell").
_VENDOR_NOISE = frozenset({
    "inc", "corp", "corporation", "co", "ltd", "limited", "llc", "gmbh", "ag", "sa",
    "computer", "computers", "technology", "technologies", "international", "electronics",
})
# After noise removal: the makers that go by more than one name. Serials are compared only between
# fingerprints whose canonical vendor agrees.
VENDOR_ALIASES: dict[str, str] = {
    "hewlett packard": "hp",
    "hp": "hp",
    "asustek": "asus",
    "micro star": "msi",
    "fujitsu client computing": "fujitsu",
    "fujitsu siemens": "fujitsu",
}

# Canonical lower-case 8-4-4-4-12 form.
BOGUS_UUIDS: dict[str, str] = {
    "00000000-0000-0000-0000-000000000000": "all zeros: the firmware has no UUID",
    "ffffffff-ffff-ffff-ffff-ffffffffffff": "all F's: unprogrammed firmware",
    "03000200-0400-0500-0006-000700080009": "AMI BIOS placeholder shared by countless boards",
    "00020003-0004-0005-0006-000700080009": "AMI BIOS placeholder, read with the other byte order",
}
BOGUS_UUID_PATTERNS: tuple[Rule, ...] = (
    _rule(r"([0-9a-f])(\1|-)*", "one digit repeated: a placeholder"),
)

BOGUS_MACHINE_IDS: dict[str, str] = {
    "uninitialized": "systemd has not committed a machine-id yet (first boot)",
}
BOGUS_MACHINE_ID_PATTERNS: tuple[Rule, ...] = (
    _rule(r"[0-]*", "all zeros: not set"),
)

# Interface names whose MAC belongs to software, not to this machine's hardware. Matched at the start
# of the name, case-insensitively. Windows names are friendly names ("vEthernet (Default Switch)").
IGNORED_INTERFACES: tuple[Rule, ...] = (
    _rule(r"lo\d*$|loopback|npcap loopback", "loopback"),
    _rule(r"docker|veth|br-[0-9a-f]|cni|flannel|cali|vxlan|podman|kube",
          "container networking: created and destroyed with containers"),
    _rule(r"virbr|vnet\d|vmnet|vboxnet|vethernet|vmware|virtualbox",
          "virtual machine host adapter: a hypervisor's, not this machine's hardware"),
    _rule(r"br\d|bridge", "bridge: borrows a member's MAC or invents one"),
    _rule(r"tun|tap|wg\d|tailscale|zt|utun|ppp|ipsec|gif\d|stf\d|nordlynx|isatap|teredo",
          "VPN or tunnel: virtual"),
    _rule(r"awdl|llw|anpi", "macOS peer-to-peer Wi-Fi / internal link: virtual"),
)

# Exact MACs that every installation of some software shares.
IGNORED_MACS: dict[str, str] = {
    "00:00:00:00:00:00": "all zeros: no hardware address",
    "ff:ff:ff:ff:ff:ff": "broadcast address, not a NIC",
    "00:05:9a:3c:7a:00": "Cisco AnyConnect virtual adapter: the same on every installation",
    "00:09:0f:fe:00:01": "FortiClient VPN virtual adapter: the same on every installation",
}

# Bits of the first octet, (mask, reason). Virtual machine guests keep their vendor-OUI MACs
# (00:50:56 VMware, 00:15:5d Hyper-V…): for a VM the virtual NIC is the machine's own, and the host's
# adapters for those hypervisors are caught by IGNORED_INTERFACES.
IGNORED_MAC_BITS: tuple[tuple[int, str], ...] = (
    (0x01, "multicast address, not a NIC"),
    (0x02, "locally administered: set by software (containers, VMs, VPNs, randomised Wi-Fi)"),
)

BOGUS_HOSTNAMES: dict[str, str] = {
    "localhost": "loopback name",
    "(none)": "no hostname set",
    "minwinpc": "Windows PE default name",
    "ubuntu": "installer default shared by every fresh install",
    "debian": "installer default shared by every fresh install",
    "raspberrypi": "installer default shared by every fresh install",
}


# --- Fingerprints ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fingerprint:
    """The identifying facts of one machine, normalised, with the untrustworthy ones already removed.

    ``None`` means "no usable value": absent, or a known placeholder. ``notes`` say what was dropped
    and why; they are explanation, not identity, so two fingerprints compare equal without them.
    """

    uuid: str | None = None
    serial: str | None = None
    machine_id: str | None = None
    macs: frozenset[str] = frozenset()
    hostname: str | None = None
    vendor: str | None = None
    model: str | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)


def normalise_vendor(vendor: str | None) -> str | None:
    """A canonical maker name ("Hewlett-Packard", "HP Inc." → "hp"), or None for placeholders."""
    if vendor is None or _key(vendor) in _PLACEHOLDER_NAME_KEYS:
        return None
    words = [w for w in re.sub(r"[^0-9a-z]+", " ", vendor.lower()).split() if w not in _VENDOR_NOISE]
    canonical = " ".join(words)
    return VENDOR_ALIASES.get(canonical, canonical) or None


def _check_serial(serial: str | None, vendor: str | None) -> tuple[str | None, str | None]:
    """(serial, note): the usable serial, or None and why it was dropped or rewritten."""
    if serial is None:
        return None, None
    text = " ".join(serial.upper().split())
    for rule in SERIAL_REWRITES.get(vendor or "", ()):
        rewritten = rule.pattern.fullmatch(text)
        if rewritten:
            return rewritten.group(1), f"serial {serial!r} read as {rewritten.group(1)}: {rule.reason}"
    key = _key(text)
    reason = _PLACEHOLDER_SERIAL_KEYS.get(key)
    if reason is None:
        reason = next((r.reason for r in BOGUS_SERIAL_PATTERNS if r.pattern.fullmatch(key)), None)
    if reason is not None:
        return None, f"serial {serial!r} ignored: {reason}"
    return text, None


def normalise_serial(serial: str | None, vendor: str | None = None) -> str | None:
    """The serial as printed on the label (upper case), or None for placeholders. ``vendor`` may be raw."""
    return _check_serial(serial, normalise_vendor(vendor))[0]


def serial_verdict(serial: str | None, vendor: str | None = None) -> tuple[str | None, str | None]:
    """As :func:`normalise_serial`, with why the value was dropped or rewritten (None if kept as is)."""
    return _check_serial(serial, normalise_vendor(vendor))


def name_verdict(label: str, value: str | None) -> tuple[str | None, str | None]:
    """A vendor or model name with spacing tidied, or None and why for a firmware placeholder."""
    return _check_name(label, value)


def _check_uuid(uuid: str | None) -> tuple[str | None, str | None]:
    if uuid is None or not uuid.strip():
        return None, None
    digits = re.sub(r"[\s{}-]", "", uuid.lower())
    if not re.fullmatch(r"[0-9a-f]{32}", digits):
        return None, f"SMBIOS UUID {uuid!r} ignored: not a UUID"
    canonical = f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
    reason = BOGUS_UUIDS.get(canonical) or next(
        (r.reason for r in BOGUS_UUID_PATTERNS if r.pattern.fullmatch(canonical)), None)
    if reason is not None:
        return None, f"SMBIOS UUID {uuid!r} ignored: {reason}"
    return canonical, None


def normalise_uuid(uuid: str | None) -> str | None:
    """Lower-case 8-4-4-4-12, or None for placeholders and non-UUIDs."""
    return _check_uuid(uuid)[0]


def _check_machine_id(machine_id: str | None) -> tuple[str | None, str | None]:
    if machine_id is None or not machine_id.strip():
        return None, None
    value = machine_id.strip().strip("{}").lower()
    reason = BOGUS_MACHINE_IDS.get(value) or next(
        (r.reason for r in BOGUS_MACHINE_ID_PATTERNS if r.pattern.fullmatch(value)), None)
    if reason is not None:
        return None, f"machine-id {machine_id!r} ignored: {reason}"
    return value, None


def normalise_mac(mac: str) -> str | None:
    """Lower-case colon form from any common spelling (AA-BB-…, aabb.ccdd.eeff, aabbccddeeff)."""
    digits = re.sub(r"[\s:.-]", "", mac.lower())
    if not re.fullmatch(r"[0-9a-f]{12}", digits):
        return None
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def ignored_mac_reason(interface: str, mac: str) -> str | None:
    """Why this (normalised) MAC says nothing about which physical machine it is on, or None if it does."""
    for rule in IGNORED_INTERFACES:
        if rule.pattern.match(interface.strip()):
            return rule.reason
    if mac in IGNORED_MACS:
        return IGNORED_MACS[mac]
    first_octet = int(mac[:2], 16)
    return next((reason for mask, reason in IGNORED_MAC_BITS if first_octet & mask), None)


def _check_hostname(hostname: str) -> tuple[str | None, str | None]:
    name = hostname.strip().lower().rstrip(".")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return None, f"hostname {hostname!r} ignored: an IP address, not a name"
    short = name.split(".", 1)[0]
    reason = BOGUS_HOSTNAMES.get(short)
    if reason is not None or not short:
        return None, f"hostname {hostname!r} ignored: {reason or 'empty'}"
    return short, None


def normalise_hostname(hostname: str) -> str | None:
    """The short name in lower case ("Room12-PC01.school.internal" → "room12-pc01"), or None."""
    return _check_hostname(hostname)[0]


def _check_name(label: str, value: str | None) -> tuple[str | None, str | None]:
    if value is None or not value.strip():
        return None, None
    reason = _PLACEHOLDER_NAME_KEYS.get(_key(value))
    if reason is not None:
        return None, f"{label} {value!r} ignored: {reason}"
    return " ".join(value.split()), None


def fingerprint_of(inventory: Inventory) -> Fingerprint:
    """Normalise what an agent reported into comparable identity, dropping (and noting) placeholders."""
    notes: list[str] = []

    def keep(checked: tuple[str | None, str | None]) -> str | None:
        value, note = checked
        if note:
            notes.append(note)
        return value

    smbios = inventory.smbios
    raw_vendor = keep(_check_name("vendor", smbios.vendor))
    vendor = normalise_vendor(raw_vendor)
    macs: set[str] = set()
    for nic in inventory.nics:
        mac = normalise_mac(nic.mac)
        if mac is None:
            if nic.mac.strip():
                notes.append(f"MAC {nic.mac!r} on {nic.name} ignored: not a MAC address")
            continue
        reason = ignored_mac_reason(nic.name, mac)
        if reason is None:
            macs.add(mac)
        else:
            notes.append(f"MAC {mac} on {nic.name} ignored: {reason}")
    return Fingerprint(
        uuid=keep(_check_uuid(smbios.uuid)),
        serial=keep(_check_serial(smbios.serial, vendor)),
        machine_id=keep(_check_machine_id(inventory.machine_id)),
        macs=frozenset(macs),
        hostname=keep(_check_hostname(inventory.hostname)),
        vendor=vendor,
        model=keep(_check_name("model", smbios.model)),
        notes=tuple(notes),
    )


# --- Matching ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conflict:
    """The candidate shares an image or firmware identifier with ``device_id`` but is other hardware."""

    device_id: int
    reason: str


@dataclass(frozen=True)
class Suspect:
    """A known device that scored something: a near miss for the merge queue, or the winner itself."""

    device_id: int
    score: int
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class MatchResult:
    """The verdict on one candidate.

    ``device_id`` is the existing device it is, or None: create a new device. ``conflict`` is set
    whenever the candidate shares a machine-id or SMBIOS UUID with other hardware (a cloned image);
    it is reported even when the candidate matched its own, earlier-created record, so a clone stays
    visible, but only ``device_id is None`` means "create". ``suspects`` are the best near misses
    (positive score below the threshold, or the losers of a match) for a human to review.
    """

    device_id: int | None
    score: int
    evidence: tuple[str, ...]
    conflict: Conflict | None = None
    suspects: tuple[Suspect, ...] = ()

    @property
    def is_new(self) -> bool:
        return self.device_id is None


def _serials_comparable(a: Fingerprint, b: Fingerprint) -> bool:
    return bool(a.serial and b.serial) and (a.vendor is None or b.vendor is None or a.vendor == b.vendor)


def _clone_reason(candidate: Fingerprint, device_id: int, known: Fingerprint) -> str | None:
    """Why ``known`` is a different machine that shares ``candidate``'s image or firmware id, or None.

    The serial decides when both are comparable (a swapped NIC leaves it alone); otherwise disjoint
    MAC sets do. With no hardware facts on one side there is nothing to contradict, so no conflict.
    """
    shared_image = candidate.machine_id is not None and candidate.machine_id == known.machine_id
    shared_uuid = candidate.uuid is not None and candidate.uuid == known.uuid
    if not (shared_image or shared_uuid):
        return None
    if _serials_comparable(candidate, known):
        if candidate.serial == known.serial:
            return None
        difference = f"a different serial ({candidate.serial}, not {known.serial})"
    elif candidate.macs and known.macs and candidate.macs.isdisjoint(known.macs):
        difference = "different MACs"
    else:
        return None
    if shared_image:
        what = "machine-id and SMBIOS UUID" if shared_uuid else "machine-id"
        return f"same {what} as device {device_id} but {difference}: cloned disk image?"
    return f"same SMBIOS UUID as device {device_id} but {difference}: cloned VM or non-unique firmware UUID?"


def _score(candidate: Fingerprint, known: Fingerprint) -> tuple[int, list[str]]:
    score = 0
    evidence: list[str] = []
    if candidate.uuid and known.uuid:
        if candidate.uuid == known.uuid:
            score += UUID_MATCH
            evidence.append(f"SMBIOS UUID {candidate.uuid} matches")
        else:
            score += UUID_DIFFERS
            evidence.append(f"SMBIOS UUID differs ({candidate.uuid}, not {known.uuid})")
    if _serials_comparable(candidate, known):
        if candidate.serial == known.serial:
            if candidate.vendor and known.vendor:
                score += SERIAL_MATCH
                evidence.append(f"serial {candidate.serial} matches")
            else:
                score += SERIAL_MATCH_VENDOR_UNKNOWN
                evidence.append(f"serial {candidate.serial} matches (vendor unknown)")
        else:
            score += SERIAL_DIFFERS
            evidence.append(f"serial differs ({candidate.serial}, not {known.serial})")
    if candidate.machine_id and candidate.machine_id == known.machine_id:
        score += MACHINE_ID_MATCH
        evidence.append("machine-id matches")
    shared = candidate.macs & known.macs
    if shared:
        score += MAC_MATCH * len(shared)
        evidence.append(f"{len(shared)} of {len(candidate.macs)} MACs match ({', '.join(sorted(shared))})")
    if candidate.hostname and candidate.hostname == known.hostname:
        score += HOSTNAME_MATCH
        evidence.append(f"hostname {candidate.hostname} matches")
    return score, evidence


def other_hardware(enrolled: Fingerprint, reported: Fingerprint) -> str | None:
    """Why ``reported`` must be a different machine from the one a credential was ``enrolled`` on, or None.

    Only contradictions count, never missing facts: a re-imaged machine (new machine-id), a renamed one,
    a swapped NIC or an agent that lost root (no serial or UUID) is still the machine it was. A
    different SMBIOS UUID or serial from the same maker is other hardware; with neither to go on,
    MAC sets with nothing in common are.
    """
    if enrolled.uuid and reported.uuid and enrolled.uuid != reported.uuid:
        return f"SMBIOS UUID {reported.uuid}, not {enrolled.uuid}"
    if _serials_comparable(enrolled, reported) and enrolled.serial != reported.serial:
        return f"serial {reported.serial}, not {enrolled.serial}"
    firmware_agrees = (enrolled.uuid is not None and enrolled.uuid == reported.uuid) or (
        _serials_comparable(enrolled, reported) and enrolled.serial == reported.serial)
    if not firmware_agrees and enrolled.macs and reported.macs and enrolled.macs.isdisjoint(reported.macs):
        return f"MACs {', '.join(sorted(reported.macs))}, none of {', '.join(sorted(enrolled.macs))}"
    return None


def fingerprint_to_json(fingerprint: Fingerprint) -> dict[str, object]:
    """What is stored of a fingerprint (the notes are explanation, not identity)."""
    return {"uuid": fingerprint.uuid, "serial": fingerprint.serial, "machine_id": fingerprint.machine_id,
            "macs": sorted(fingerprint.macs), "hostname": fingerprint.hostname, "vendor": fingerprint.vendor,
            "model": fingerprint.model}


def fingerprint_from_json(data: dict) -> Fingerprint:
    return Fingerprint(uuid=data.get("uuid"), serial=data.get("serial"), machine_id=data.get("machine_id"),
                       macs=frozenset(data.get("macs") or ()), hostname=data.get("hostname"),
                       vendor=data.get("vendor"), model=data.get("model"))


def match(candidate: Fingerprint, known: Iterable[tuple[int, Fingerprint]]) -> MatchResult:
    """Decide which known device ``candidate`` is, if any.

    Linear in ``known``; use :class:`FingerprintIndex` for a whole estate. Ties go to the lowest
    device id (the oldest record, most likely the one its history hangs on); the tie is recorded
    in the evidence so the duplicate can be merged.
    """
    scored: list[Suspect] = []
    conflicts: list[Conflict] = []
    for device_id, fingerprint in known:
        clone = _clone_reason(candidate, device_id, fingerprint)
        if clone is not None:
            conflicts.append(Conflict(device_id, clone))
            continue
        score, evidence = _score(candidate, fingerprint)
        if score > 0:
            scored.append(Suspect(device_id, score, tuple(evidence)))
    scored.sort(key=lambda s: (-s.score, s.device_id))
    conflict = min(conflicts, key=lambda c: c.device_id, default=None)
    notes = [conflict.reason] if conflict else []
    if len(conflicts) > 1:
        notes.append(f"{len(conflicts) - 1} more devices share that image or firmware UUID")

    if scored and scored[0].score >= MATCH_THRESHOLD:
        best, rest = scored[0], scored[1:]
        evidence = list(best.evidence)
        if rest and rest[0].score == best.score:
            evidence.append(f"tied with device {rest[0].device_id} at {best.score}: the lower id wins")
        return MatchResult(best.device_id, best.score, tuple(evidence + notes), conflict,
                           tuple(rest[:SUSPECT_LIMIT]))
    verdict = f"no known device reached {MATCH_THRESHOLD} points"
    if scored:
        verdict += f" (nearest: device {scored[0].device_id} with {scored[0].score})"
    return MatchResult(None, 0, (*notes, verdict), conflict, tuple(scored[:SUSPECT_LIMIT]))


class FingerprintIndex:
    """Known fingerprints indexed by every identifier, so matching costs what the candidate shares,
    not the size of the estate. Gives exactly the answers :func:`match` gives over the same devices."""

    def __init__(self, known: Iterable[tuple[int, Fingerprint]] = ()) -> None:
        self._fingerprints: dict[int, Fingerprint] = {}
        self._by_value: defaultdict[tuple[str, str], set[int]] = defaultdict(set)
        for device_id, fingerprint in known:
            self.add(device_id, fingerprint)

    @staticmethod
    def _keys(fingerprint: Fingerprint) -> Iterator[tuple[str, str]]:
        for kind in ("uuid", "serial", "machine_id", "hostname"):
            value = getattr(fingerprint, kind)
            if value is not None:
                yield kind, value
        for mac in fingerprint.macs:
            yield "mac", mac

    def add(self, device_id: int, fingerprint: Fingerprint) -> None:
        """Record or replace a device's fingerprint."""
        self.remove(device_id)
        self._fingerprints[device_id] = fingerprint
        for key in self._keys(fingerprint):
            self._by_value[key].add(device_id)

    def remove(self, device_id: int) -> None:
        """Forget a device (merged away or disposed of); unknown ids are ignored."""
        fingerprint = self._fingerprints.pop(device_id, None)
        if fingerprint is None:
            return
        for key in self._keys(fingerprint):
            bucket = self._by_value[key]
            bucket.discard(device_id)
            if not bucket:
                del self._by_value[key]

    def match(self, candidate: Fingerprint) -> MatchResult:
        """As :func:`match`: every device that can score or conflict shares at least one value."""
        ids: set[int] = set()
        for key in self._keys(candidate):
            ids |= self._by_value.get(key, set())
        return match(candidate, ((i, self._fingerprints[i]) for i in sorted(ids)))

    def __len__(self) -> int:
        return len(self._fingerprints)

    def __contains__(self, device_id: object) -> bool:
        return device_id in self._fingerprints
