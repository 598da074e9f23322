"""Which profile fits a device: classify by what it answers, then refine by vendor.

Identification asks two questions whatever the profiles: one GET (the system group and the exact
objects some vendor profiles need to tell models apart) and one GETNEXT past every subtree any
profile names as evidence (a Printer-MIB table, the UPS-MIB, a vendor's PDU subtree). A GETNEXT's
answer says whether the subtree holds anything and, for a column, what its first row holds; a
column probe that the first row does not settle is walked only when its profile could win.

Matching is data (each profile's ``match`` block). Among the profiles that match, the highest
``priority`` wins, then the longest sysObjectID prefix, then the name, so the choice never depends
on file order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from controller.snmp import oids
from controller.snmp.client import Value
from controller.snmp.collect import plan
from controller.snmp.profiles import Answer, Profile
from controller.snmp.readings import Identity

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
SYSTEM = (SYS_DESCR, SYS_OBJECT_ID, SYS_NAME)
#: Rows of a column read to settle an ``equals`` probe: sensors and entities come in dozens.
PROBE_ROWS = 256


@dataclass(frozen=True)
class Questions:
    gets: list[str]  # the system group and the exact objects profiles look for
    nexts: list[str]  # the subtrees and columns profiles look for, and the standard tables they walk

    @property
    def next_for(self) -> dict[str, str]:
        """Each exact object by the OID whose GETNEXT answers it: its parent for a scalar (x.0), the
        previous row for a table cell, so one GETNEXT asks for everything identification needs."""
        return {oids.before(oid): oid for oid in self.gets}


def questions(profiles: Iterable[Profile]) -> Questions:
    """The system group plus every probe, each once: two requests answer the whole question. The
    GETNEXT also asks past the standard MIB tables profiles walk (ENTITY-MIB, HOST-RESOURCES…), so
    those a device lacks are not walked."""
    gets = dict.fromkeys(SYSTEM)
    nexts: dict[str, None] = {}
    for profile in profiles:
        gets.update(dict.fromkeys(p.oid for p in profile.match.present))
        nexts.update(dict.fromkeys(a.oid for a in profile.match.answers))
    for profile in profiles:
        nexts.update(dict.fromkeys(_root(w) for w in plan(profile)[1] if oids.is_under(w, oids.MIB_2)))
    return Questions(list(gets), list(nexts))


def _root(oid: str) -> str:
    """The group a standard column belongs to: mib-2 and two arcs (1.3.6.1.2.1.47.1, entityPhysical)."""
    return ".".join(oid.split(".")[:8])


@dataclass(frozen=True)
class Evidence:
    """What identification learnt: GET values, the first object after each probed OID, and the
    columns walked to settle ``equals`` probes."""

    values: Mapping[str, Value] = field(default_factory=dict)
    following: Mapping[str, tuple[str, Value]] = field(default_factory=dict)
    columns: Mapping[str, Sequence[Value]] = field(default_factory=dict)
    asked: Sequence[str] = ()  # the OIDs the GETNEXT asked past

    def holds(self, answer: Answer) -> bool | None:
        """Whether the device shows this evidence; None when only walking the column can tell."""
        found = self.following.get(answer.oid)
        if found is None or not oids.is_under(found[0], answer.oid):
            return False
        if answer.equals is None:
            return True
        if answer.oid in self.columns:
            return any(_raw(v) == answer.equals for v in self.columns[answer.oid])
        return True if _raw(found[1]) == answer.equals else None

    def absent(self) -> list[str]:
        """Each probed OID the device has nothing under."""
        seen = self.seen()
        return [asked for asked in self.asked if asked not in seen]

    def seen(self) -> dict[str, str]:
        """Each probed subtree the device answered in, with the first object found there."""
        return {asked: oid for asked, (oid, _) in self.following.items() if oids.is_under(oid, asked)}

    def with_columns(self, walked: Mapping[str, Sequence[tuple[str, Value]]]) -> Evidence:
        return replace(self, columns={**self.columns, **{c: [v for _, v in rows] for c, rows in walked.items()}})


class Identifications:
    """Which profile each address was identified as, and under which sysObjectID: a later poll that
    finds the same sysObjectID (and the profile's exact objects still there) skips the GETNEXT of
    every probe. A device replaced at an address, or re-flashed, is identified afresh."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int], tuple[str | None, str, tuple[str, ...]]] = {}

    def recall(self, address: str, port: int, values: Mapping[str, Value],
               profiles: Mapping[str, Profile]) -> tuple[Profile, tuple[str, ...]] | None:
        """The profile the address was identified as, with the subtrees it was found to lack."""
        known = self._known.get((address, port))
        if known is None or known[0] != system_identity(values).sys_object_id or known[1] not in profiles:
            return None
        profile = profiles[known[1]]
        present = all(v is not None and _raw(v) not in p.unless
                      for p in profile.match.present for v in [values.get(p.oid)])
        return (profile, known[2]) if present else None

    def expected(self, address: str, port: int,
                 profiles: Mapping[str, Profile]) -> tuple[Profile, tuple[str, ...]] | None:
        """The profile the address was last identified as, and the subtrees it lacked, before asking it
        anything."""
        known = self._known.get((address, port))
        return (profiles[known[1]], known[2]) if known and known[1] in profiles else None

    def remember(self, address: str, port: int, values: Mapping[str, Value], profile: Profile,
                 absent: Sequence[str]) -> None:
        self._known[(address, port)] = (system_identity(values).sys_object_id, profile.name, tuple(absent))


def system_identity(values: Mapping[str, Value]) -> Identity:
    def text(oid: str) -> str | None:
        value = values.get(oid)
        return value.text() or None if value is not None else None

    return Identity(sys_object_id=text(SYS_OBJECT_ID), sys_descr=text(SYS_DESCR), sys_name=text(SYS_NAME))


@dataclass(frozen=True)
class Choice:
    """The best profile the evidence supports, or the columns to walk before it can be told."""

    profile: Profile | None
    walk: tuple[str, ...] = ()


def choose(profiles: Iterable[Profile], evidence: Evidence) -> Choice:
    decided, undecided = [], []
    for profile in profiles:
        verdict = _verdict(profile, evidence)
        if verdict is not None:
            (undecided if verdict[1] else decided).append(((profile.priority, verdict[0], profile.name), profile,
                                                           verdict[1]))
    best = max(decided, key=lambda item: item[0], default=None)
    walk = {c for rank, _, columns in undecided if best is None or rank > best[0] for c in columns}
    return Choice(best[1] if best else None, tuple(sorted(walk)))


def _verdict(profile: Profile, evidence: Evidence) -> tuple[int, tuple[str, ...]] | None:
    """None when the profile does not match; else the length of the sysObjectID prefix it matched on
    and the columns still to walk before it is known to match (none: it does)."""
    match, values = profile.match, evidence.values
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
        if value is None or _raw(value) in probe.unless:
            return None
    if not match.answers:
        return specificity, ()
    verdicts = [(answer, evidence.holds(answer)) for answer in match.answers]
    if any(held for _, held in verdicts):
        return specificity, ()
    unknown = tuple(answer.oid for answer, held in verdicts if held is None)
    return (specificity, unknown) if unknown else None


def _raw(value: Value) -> str:
    return value.text() if isinstance(value.raw, bytes) else str(value.raw)
