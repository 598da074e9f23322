"""Which profile fits a device: read the system group and every profile's probes in one GET, then match.

Matching is data (each profile's ``match`` block). Among the profiles that match, the highest
``priority`` wins, then the longest sysObjectID prefix, then the name, so the choice never depends
on file order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from controller.snmp import oids
from controller.snmp.client import Value
from controller.snmp.profiles import Profile
from controller.snmp.readings import Identity

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
SYSTEM = (SYS_DESCR, SYS_OBJECT_ID, SYS_NAME)


def identification_oids(profiles: Iterable[Profile]) -> list[str]:
    """The system group plus every probe, each once: one request answers the whole question."""
    wanted = dict.fromkeys(SYSTEM)
    for profile in profiles:
        wanted.update(dict.fromkeys(p.oid for p in profile.match.present))
    return list(wanted)


def system_identity(values: Mapping[str, Value]) -> Identity:
    def text(oid: str) -> str | None:
        value = values.get(oid)
        return value.text() or None if value is not None else None

    return Identity(sys_object_id=text(SYS_OBJECT_ID), sys_descr=text(SYS_DESCR), sys_name=text(SYS_NAME))


def choose(profiles: Iterable[Profile], values: Mapping[str, Value]) -> Profile | None:
    ranked = []
    for profile in profiles:
        specificity = _specificity(profile, values)
        if specificity is not None:
            ranked.append(((profile.priority, specificity, profile.name), profile))
    return max(ranked, key=lambda item: item[0])[1] if ranked else None


def _specificity(profile: Profile, values: Mapping[str, Value]) -> int | None:
    """None when the profile does not match; else the length of the sysObjectID prefix it matched on."""
    match = profile.match
    specificity = 0
    if match.sys_object_id:
        sys_object_id = values.get(SYS_OBJECT_ID)
        found = sys_object_id.text() if sys_object_id is not None else ""
        hits = [p for p in match.sys_object_id if found == p or oids.is_under(found, p)]
        if not hits:
            return None
        specificity = max(len(oids.key(p)) for p in hits)
    if match.sys_descr is not None:
        descr = values.get(SYS_DESCR)
        if descr is None or not match.sys_descr.search(descr.text()):
            return None
    for probe in match.present:
        value = values.get(probe.oid)
        if value is None or (value.text() if isinstance(value.raw, bytes) else str(value.raw)) in probe.unless:
            return None
    return specificity
