"""Applying a profile: which OIDs to read, and what the answers mean. Pure apart from ``fetch``.

``plan`` lists the GETs and WALKs a profile needs, ``fetch`` asks the device, and ``evaluate`` turns
the answers (a Snapshot) into measured field values, so every rule can be tested on recorded data.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from controller.snmp import fields, oids
from controller.snmp.client import WRAPS_AT, Kind, SnmpClient, SnmpError, SnmpTimeout, Target, Value
from controller.snmp.profiles import Profile, Source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """What one device answered: GET values by OID and WALK rows by prefix."""

    sys_descr: str = ""
    values: Mapping[str, Value] = field(default_factory=dict)
    walks: Mapping[str, Sequence[tuple[str, Value]]] = field(default_factory=dict)
    asked: frozenset[str] = frozenset()  # OIDs already asked by GET, answered or not


@dataclass(frozen=True)
class Measured:
    """A field's value in its unit; ``wraps_at`` is where an unsigned counter returns to zero and
    ``step`` what one raw count is worth, both in that unit."""

    value: object
    wraps_at: float | None = None
    step: float | None = None


Row = dict[str, Measured]


@dataclass(frozen=True)
class Evaluation:
    scalars: dict[str, dict[str, Measured]]
    tables: dict[str, dict[str, Row]]  # section -> index -> fields


def plan(profile: Profile) -> tuple[list[str], list[str]]:
    """(OIDs to GET, prefixes to WALK), each once, in a stable order."""
    gets: dict[str, None] = {}
    walks: dict[str, None] = {}
    sources = [s for section in profile.scalars.values() for chain in section.values() for s in chain]
    sources += [s for table in profile.tables.values() for chain in table.values() for s in chain]
    for source in sources:
        if source.get:
            gets[source.get] = None
            if source.decimals:
                gets[source.decimals] = None
        if source.walk:
            walks[source.walk] = None
            if source.decimals:
                walks[source.decimals] = None
        for column, _ in source.where:
            walks[column] = None
    return list(gets), list(walks)


async def fetch(client: SnmpClient, target: Target, profile: Profile, known: Snapshot,
                absent: Collection[str] = ()) -> tuple[Snapshot, list[str]]:
    """Read what the profile needs that ``known`` lacks. Returns the snapshot and what could not be read.

    The GETs and walks go together (``get_and_walk``), except walks under a subtree identification
    found empty (``absent``): a PDU without ENTITY-MIB is not asked for its chassis. A column read only at the
    rows another column picks (``where``: a stack's chassis among its 200 entities) is read by GET
    of those rows once that column is in. A timeout ends the collection (the device has gone quiet,
    and every further request would wait as long again); an agent error loses only the subtree that
    caused it.
    """
    gets, picked = plan(profile)[0], picked_columns(profile)
    walks = [w for w in walks_to_fetch(profile, absent) if w not in known.walks]
    values = dict(known.values)
    problems: list[str] = []
    missing = [o for o in gets if o not in values and o not in known.asked]
    rows: dict[str, Sequence[tuple[str, Value]]] = dict(known.walks)
    try:
        try:
            found, walked = await client.get_and_walk(target, missing, walks)
            values.update(found)
            rows.update(walked)
        except SnmpTimeout:
            raise
        except SnmpError:  # one subtree upset the agent: ask again apart to lose only that one
            values.update(await client.get(target, missing) if missing else {})
            for prefix in walks:
                try:
                    rows[prefix] = await client.walk(target, prefix)
                except SnmpTimeout:
                    raise
                except SnmpError as exc:
                    log.info("snmp %s: walk %s failed: %s", target.host, prefix, exc)
                    problems.append(f"could not walk {prefix}: {exc}")
        rows.update(await _picked_rows(client, target, picked, Snapshot(walks=rows)))
    except SnmpTimeout as exc:
        problems.append(f"stopped early: {exc}")
    except SnmpError as exc:
        problems.append(f"could not read the rows picked from a table: {exc}")
    return Snapshot(known.sys_descr, values, rows, known.asked), problems


def walks_to_fetch(profile: Profile, absent: Collection[str] = ()) -> list[str]:
    """The columns ``fetch`` walks for ``profile`` on a device lacking ``absent``."""
    picked = picked_columns(profile)
    return [w for w in plan(profile)[1] if w not in picked and not any(w == a or oids.is_under(w, a) for a in absent)]


def picked_columns(profile: Profile) -> dict[str, list[tuple[tuple[str, str], ...]]]:
    """Columns every source reads only at rows picked by ``where``, with the conditions that pick them."""
    sources = [s for section in profile.scalars.values() for chain in section.values() for s in chain]
    sources += [s for table in profile.tables.values() for chain in table.values() for s in chain]
    picked: dict[str, list[tuple[tuple[str, str], ...]]] = {}
    whole = {s.walk for s in sources if s.walk and not s.where} | {c for s in sources for c, _ in s.where}
    whole |= {s.decimals for s in sources if s.decimals and s.walk}
    for source in sources:
        if source.walk and source.where and source.walk not in whole:
            picked.setdefault(source.walk, []).append(source.where)
    return picked


async def _picked_rows(client: SnmpClient, target: Target, picked: Mapping[str, list[tuple[tuple[str, str], ...]]],
                       walked: Snapshot) -> dict[str, list[tuple[str, Value]]]:
    wanted: dict[str, list[str]] = {}
    for column, conditions in picked.items():
        indices = {index for where in conditions for index in _matching(where, walked)}
        wanted[column] = sorted(indices, key=oids.key)
    asked = [f"{column}.{index}" for column, indices in wanted.items() for index in indices]
    found = await client.get(target, asked) if asked else {}
    return {column: [(f"{column}.{i}", found[f"{column}.{i}"]) for i in indices if f"{column}.{i}" in found]
            for column, indices in wanted.items()}


def _matching(where: Sequence[tuple[str, str]], snapshot: Snapshot) -> set[str]:
    """The row indices at which every condition holds."""
    sets = [{index for index, value in _column(column, snapshot).items() if _raw_text(value) == equals}
            for column, equals in where]
    return set.intersection(*sets) if sets else set()


def evaluate(profile: Profile, snapshot: Snapshot) -> Evaluation:
    scalars = {}
    for section, chains in profile.scalars.items():
        measured = {}
        for name, chain in chains.items():
            value = _first(chain, fields.SCALARS[section][name], snapshot)
            if value is not None:
                measured[name] = value
        scalars[section] = measured
    tables = {section: _table(columns, section, snapshot) for section, columns in profile.tables.items()}
    return Evaluation(scalars, tables)


def _first(chain: Sequence[Source], unit: str, snapshot: Snapshot) -> Measured | None:
    for source in chain:
        value = _one(source, unit, snapshot)
        if value is not None:
            return value
    return None


def _one(source: Source, unit: str, snapshot: Snapshot) -> Measured | None:
    if source.value is not None:
        return Measured(source.value)
    if source.sys_descr is not None:
        found = source.sys_descr.search(snapshot.sys_descr)
        return convert(source, unit, Value(Kind.OCTETS, found.group(1).encode())) if found else None
    if source.get is not None:
        value = snapshot.values.get(source.get)
        places = snapshot.values.get(source.decimals) if source.decimals else None
        return convert(source, unit, value, places) if value is not None else None
    rows = _rows(source, snapshot)
    if source.reduce == "count":
        counted = sum(1 for v, _ in rows.values() if _raw_text(v) not in source.invalid)
        return Measured(counted) if counted else None  # no matching row is no evidence, not "zero processors"
    measured = [m for m in (convert(source, unit, v, places) for v, places in rows.values()) if m is not None]
    if not measured:
        return None
    if source.reduce == "first":
        return measured[0]
    numbers = [float(m.value) for m in measured]
    return Measured(_tidy({"sum": sum, "max": max, "min": min}[source.reduce](numbers)), step=source.scale)


def _table(columns: Mapping[str, Sequence[Source]], section: str, snapshot: Snapshot) -> dict[str, Row]:
    table: dict[str, Row] = {}
    for name, chain in columns.items():
        for source in chain:
            for index, (value, places) in _rows(source, snapshot).items():
                measured = convert(source, fields.TABLES[section][name], value, places)
                if measured is not None and name not in table.get(index, {}):
                    table.setdefault(index, {})[name] = measured
    return dict(sorted(table.items(), key=lambda item: oids.key(item[0])))


def _rows(source: Source, snapshot: Snapshot) -> dict[str, tuple[Value, Value | None]]:
    """A walked column's rows by index, each with its decimal places where the source names them:
    filtered by ``where``, and by ``suffix`` (which the index then loses)."""
    rows = _column(source.walk or "", snapshot)
    if source.where:
        keep = _matching(source.where, snapshot)
        rows = {index: value for index, value in rows.items() if index in keep}
    places = _column(source.decimals, snapshot) if source.decimals else {}
    found = {index: (value, places.get(index)) for index, value in rows.items()}
    if source.suffix is not None:
        tail = "." + source.suffix
        found = {index.removesuffix(tail): row for index, row in found.items() if index.endswith(tail)}
    return found


def _column(prefix: str, snapshot: Snapshot) -> dict[str, Value]:
    return {oids.index_of(oid, prefix): value for oid, value in snapshot.walks.get(prefix, ())}


def _raw_text(value: Value) -> str:
    return value.text() if isinstance(value.raw, bytes) else str(value.raw)


def convert(source: Source, unit: str, value: Value, places: Value | None = None) -> Measured | None:
    """One raw value as the field's value, or None when it is missing, invalid or meaningless.
    ``places`` is the value's number of decimal places, where the device says it apart."""
    raw = _raw_text(value)
    if raw in source.invalid:
        return None
    if unit == fields.FLAGS:
        octets = value.raw if isinstance(value.raw, bytes) else b""
        return Measured(tuple(name for bit, name in enumerate(source.bits)
                              if bit // 8 < len(octets) and octets[bit // 8] & (0x80 >> bit % 8)))
    if source.map is not None:
        mapped = source.map.get(raw)
        return Measured(mapped) if mapped is not None else None
    if unit == fields.TEXT:
        raw = readable(raw)
        if source.pattern is not None:
            found = source.pattern.search(raw)
            raw = found.group(1).strip() if found else ""
        raw = raw.removeprefix(source.strip_prefix) if source.strip_prefix else raw
        return Measured(raw) if raw else None
    number = value.raw if isinstance(value.raw, int) else _number(raw)
    if number is None or (number < 0 and unit in fields.NOT_NEGATIVE):
        return None
    if unit == fields.COUNT:
        return Measured(int(number))
    scale = source.scale
    if places is not None and isinstance(places.raw, int) and 0 <= places.raw <= 9:
        scale *= 10.0 ** -places.raw
    wraps = WRAPS_AT.get(value.kind)
    return Measured(_tidy(number * scale), wraps * scale if wraps else None, scale)


#: A line of two-digit hex pairs: how some agents (and tools that recorded them) continue an octet
#: string that held a byte they could not print ("Black Cartridge \n38 32 37 41 00").
_HEX_LINE = re.compile(r"[0-9A-Fa-f]{2}( [0-9A-Fa-f]{2})* ?")


def readable(text: str) -> str:
    """Text as a person should read it: hex-dump lines decoded back into the characters they encode
    (kept as they are unless they decode to printable text), control characters and runs of spaces
    as one space."""
    lines = text.split("\n")
    if len(lines) > 1 or (_HEX_LINE.fullmatch(text.strip()) and len(text.strip()) > 8):
        decoded = [lines[0] if len(lines) > 1 else _unhex(lines[0])]
        decoded += [_unhex(line) for line in lines[1:]]
        text = "".join(decoded) if all(part is not None for part in decoded) else text
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _unhex(line: str) -> str | None:
    if not _HEX_LINE.fullmatch(line):
        return None
    decoded = bytes.fromhex(line.replace(" ", "")).rstrip(b"\x00")
    try:
        text = decoded.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() else None


def _tidy(number: float) -> float:
    """Scaling by 0.1 leaves binary noise (2.8000000000000003); no meter is that precise."""
    return round(number, 9)


def _number(text: str) -> float | None:
    """Numbers some agents send as text ("6.400"); "N/A" and the like are no number."""
    try:
        return float(text)
    except ValueError:
        return None
