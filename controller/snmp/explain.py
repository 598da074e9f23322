"""What a device answered that no profile interpreted, so an operator can report it.

Every poll knows the subtrees identification found (the capability and vendor probes) and which of
them its profile read. A survey (``caretaker snmp poll`` and ``snmp discover`` ask for one) also
steps through the device's MIB one GETNEXT at a time, jumping from one standard MIB or vendor
subtree to the next, so a subtree no profile probes for is seen too. The generic networking MIBs
every agent has (interfaces, IP, SNMP itself) are left out: they say nothing about what the device is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from controller.snmp import oids
from controller.snmp.client import SnmpClient, SnmpError, Target
from controller.snmp.collect import plan
from controller.snmp.enterprises import ENTERPRISES, enterprise_of, number_of
from controller.snmp.profiles import DeviceKind, Profile
from controller.snmp.readings import Identity, Subtree, Unexplained

MIB_2 = oids.MIB_2
#: Standard MIBs under mib-2 by arc, for naming what a device answered.
STANDARD_MIBS = {
    "1": "SNMPv2-MIB system", "2": "IF-MIB interfaces", "4": "IP-MIB", "5": "ICMP", "6": "TCP-MIB", "7": "UDP-MIB",
    "10": "transmission (EtherLike-MIB)", "11": "SNMPv2-MIB snmp", "14": "OSPF-MIB", "15": "BGP4-MIB",
    "16": "RMON-MIB", "17": "BRIDGE-MIB", "25": "HOST-RESOURCES-MIB", "31": "IF-MIB ifMIB", "33": "UPS-MIB",
    "43": "Printer-MIB", "47": "ENTITY-MIB", "55": "IPV6-MIB", "99": "ENTITY-SENSOR-MIB", "105": "POWER-ETHERNET-MIB",
}
#: mib-2 arcs every kind of agent answers: seen, they explain nothing.
COMMON = {"1", "2", "4", "5", "6", "7", "10", "11", "31", "55"}
#: Requests a survey may make: a device with more subtrees than this is surveyed in part.
SURVEY_STEPS = 48
#: Sibling vendor subtrees listed one by one before the survey lists their parent instead.
GROUP_LIMIT = 3
#: Words in sysDescr that suggest what an unrecognised device is.
_HINTS = ((DeviceKind.PRINTER, r"print|laserjet|mfp|copier"), (DeviceKind.UPS, r"\bups\b|uninterruptible"),
          (DeviceKind.PDU, r"\bpdu\b|power distribution"),
          (DeviceKind.ACCESS_POINT, r"wireless|access point|\bwlan\b|\bap\d"), (DeviceKind.SWITCH, r"switch"))


async def survey(client: SnmpClient, target: Target, steps: int = SURVEY_STEPS) -> list[str]:
    """The standard MIBs (mib-2 arcs) and vendor subtrees (two arcs below the enterprise number, or
    one where a vendor keeps many small groups side by side) the device answers in, one GETNEXT
    each. A failure ends the survey with what it found so far."""
    found: list[str] = []
    asking = MIB_2
    for _ in range(steps):
        try:
            answer = (await client.next(target, [asking])).get(asking)
        except SnmpError:
            break
        if answer is None:
            break
        oid = answer[0]
        if oids.is_under(oid, MIB_2):
            subtree = _prefix(oid, MIB_2, 1)
        elif oids.key(oid) < oids.key(ENTERPRISES):
            asking = ENTERPRISES
            continue
        elif oids.is_under(oid, ENTERPRISES):
            subtree = _prefix(oid, ENTERPRISES, 3)
            parent = _prefix(oid, ENTERPRISES, 2)
            siblings = [s for s in found if oids.is_under(s, parent)]
            if len(siblings) >= GROUP_LIMIT:  # many small groups: the vendor subtree above them will do
                found = [s for s in found if s not in siblings]
                subtree = parent
        else:
            break
        found.append(subtree)
        asking = _after(subtree)
    return found


def explain(profile: Profile, identity: Identity, seen: Iterable[str],
            kind_evidence: Iterable[str] = ()) -> Unexplained:
    """The subtrees seen that the profile reads nothing in, named. Evidence of the device's kind
    (``kind_evidence``: what any profile of that kind matches on, BRIDGE-MIB for a switch) counts as
    interpreted: it said what the device is."""
    gets, walks = plan(profile)
    read = [*gets, *walks, *(p.oid for p in profile.match.present), *kind_evidence]
    left: dict[str, Subtree] = {}
    seen = list(dict.fromkeys(seen))
    for subtree in seen:
        if (_common(subtree) or any(oids.is_under(subtree, s) for s in seen)
                or any(r == subtree or oids.is_under(r, subtree) or oids.is_under(subtree, r) for r in read)):
            continue
        left.setdefault(subtree, Subtree(subtree, _name(subtree)))
    kind = profile.kind if profile.kind != DeviceKind.HOST else guess_kind(identity.sys_descr or "")
    return Unexplained(kind, identity.vendor, identity.sys_object_id,
                       tuple(sorted(left.values(), key=lambda s: oids.key(s.oid))))


def guess_kind(sys_descr: str) -> str:
    """What sysDescr's words suggest; ``host`` when they suggest nothing."""
    return next((kind for kind, pattern in _HINTS if re.search(pattern, sys_descr, re.IGNORECASE)), DeviceKind.HOST)


def _common(subtree: str) -> bool:
    return oids.is_under(subtree, MIB_2) and subtree[len(MIB_2) + 1:].split(".")[0] in COMMON


def _name(subtree: str) -> str:
    if oids.is_under(subtree, MIB_2):
        arc = subtree[len(MIB_2) + 1:].split(".")[0]
        return STANDARD_MIBS.get(arc, f"mib-2 {arc}")
    found = enterprise_of(subtree)
    number = number_of(subtree)
    return found.vendor if found else f"enterprise {number}" if number is not None else "other"


def _prefix(oid: str, base: str, arcs: int) -> str:
    parts = oid[len(base) + 1:].split(".")
    return ".".join([base, *parts[:arcs]])


def _after(subtree: str) -> str:
    """An OID past every object of ``subtree`` and before its next sibling's: GETNEXT from it finds
    the next subtree's first object."""
    *head, last = subtree.split(".")
    return ".".join([*head, str(int(last) + 1)])
