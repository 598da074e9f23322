"""Device profiles: YAML data that says how to recognise a device family and where its readings live.

A profile (one file in ``profiles/``, named after it) has a ``kind``, a ``match`` block and sections
from ``fields.py``. Each scalar field is a source or a list of sources tried in order (the first that
yields a usable value wins); each table field is a column, or columns tried in order row by row.
A source is one of::

    get: OID                      a scalar
    walk: OID                     a column, reduced with reduce: first|sum|max|min|count
                                  optionally filtered: where: {column: OID, equals: VALUE}
                                  (or a list of such conditions, all of which must hold)
    sys_descr: REGEX              the first group of a match on sysDescr
    value: CONSTANT

with modifiers ``scale`` ("10 W", "0.1 kWh", or a bare factor), ``decimals`` (the OID, or for a walk
the column, of the value's number of decimal places), ``suffix`` (a walk keeps the rows whose index
ends in this arc, and drops it: one sensor type of a sensor table), ``invalid`` (raw values that mean
"not supported", such as -1), ``map`` (raw value to text or boolean), ``pattern`` (a regex whose
first group is kept), ``strip_prefix`` and ``bits`` (names of the bits of an octet string, most
significant bit of the first octet first).

Matching classifies by capability, then refines by vendor. ``answers`` lists subtrees of which any
one answering is evidence (a Printer-MIB table, the UPS-MIB, a vendor's UPS subtree), or columns
with a value in some row (``{column: OID, equals: VALUE}``); ``sys_object_id`` prefixes and a
``sys_descr`` pattern narrow to a vendor; ``present`` names exact objects that must all answer, and
is only allowed beside one of the others: a single object is how a vendor's models differ, never
what makes a device a printer or a UPS, since many of each lack any one object.

``extends: NAME`` starts from another profile and replaces it field by field, except identity: a
child's identity sources join its parent's and every chain is ordered ENTITY-MIB, HOST-RESOURCES,
Printer-MIB, other standard MIBs, vendor OIDs and constants, sysDescr patterns, so the standard
wherever a device has it. ``agent: card`` says sysDescr describes an add-in management card, not
the device (a UPS's card has its own serial), so identity is never taken from it. A child replaces
an inherited identity chain instead of joining it with ``{only: [sources]}``, for a vendor whose
standard objects are known to mislead (a copier whose hrDeviceDescr names a print driver).
Everything is checked on load; code never names a vendor.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from controller.errors import DomainError
from controller.snmp import fields, oids

PROFILES_DIR = Path(__file__).parent / "profiles"


class DeviceKind(enum.StrEnum):
    """What a device is; ``host`` is any SNMP agent no profile recognised as one of the others."""

    PRINTER = "printer"
    SWITCH = "switch"
    ACCESS_POINT = "access_point"
    PDU = "pdu"
    UPS = "ups"
    HOST = "host"


REDUCERS = ("first", "sum", "max", "min", "count")
_SOURCE_KEYS = {"get", "walk", "sys_descr", "value"}
_MODIFIERS = {"reduce", "where", "scale", "decimals", "suffix", "invalid", "map", "pattern", "strip_prefix", "bits"}
_SECTIONS = set(fields.SCALARS) | set(fields.TABLES)
_STANDARD = "1.3.6.1.2.1"
#: Identity sources in the order a chain tries them, by where they read (see the module docstring).
_IDENTITY_TIERS = ("1.3.6.1.2.1.47", "1.3.6.1.2.1.25", "1.3.6.1.2.1.43", _STANDARD)


class ProfileError(ValueError, DomainError):
    """A profile that cannot be used; the message names the file and the place in it."""


@dataclass(frozen=True)
class Source:
    get: str | None = None
    walk: str | None = None
    sys_descr: re.Pattern | None = None
    value: object = None
    reduce: str = "first"
    where: tuple[tuple[str, str], ...] = ()  # (column OID, raw value as text): rows where all hold
    scale: float = 1.0
    decimals: str | None = None  # OID (get) or column (walk) of the number of decimal places
    suffix: str | None = None  # a walk keeps rows whose index ends in this arc, without it
    invalid: frozenset[str] = frozenset()  # raw values as text
    map: Mapping[str, object] | None = None  # raw value as text -> value
    pattern: re.Pattern | None = None
    strip_prefix: str = ""
    bits: tuple[str, ...] = ()


@dataclass(frozen=True)
class Probe:
    """An OID whose presence (with a value not in ``unless``) is evidence for a profile."""

    oid: str
    unless: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Answer:
    """Evidence of a capability: any object under ``oid``; with ``equals``, a row of column ``oid``
    holding that raw value (an ENTITY-SENSOR sensor whose type is watts)."""

    oid: str
    equals: str | None = None


@dataclass(frozen=True)
class Match:
    """Every condition given must hold; ``sys_object_id`` and ``answers`` hold when any of theirs
    does, ``present`` when all of its probes do. Empty matches all (only a host profile may)."""

    sys_object_id: tuple[str, ...] = ()
    sys_descr: re.Pattern | None = None
    present: tuple[Probe, ...] = ()
    answers: tuple[Answer, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.sys_object_id or self.sys_descr or self.present or self.answers)


@dataclass(frozen=True)
class Profile:
    name: str
    kind: DeviceKind
    description: str
    priority: int
    match: Match
    scalars: Mapping[str, Mapping[str, tuple[Source, ...]]] = field(default_factory=dict)
    tables: Mapping[str, Mapping[str, tuple[Source, ...]]] = field(default_factory=dict)


def load_profiles(directory: Path = PROFILES_DIR) -> dict[str, Profile]:
    """Every ``*.yaml`` profile in ``directory``, validated, with ``extends`` resolved."""
    raw: dict[str, dict] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ProfileError(f"{path.name}: not valid YAML: {exc}") from None
        if not isinstance(data, dict) or data.get("name") != path.stem:
            raise ProfileError(f"{path.name}: a profile is a mapping whose name is the file name ({path.stem})")
        raw[path.stem] = data
    if not raw:
        raise ProfileError(f"no profiles in {directory}")
    return {name: parse_profile(_resolved(name, raw, ()), f"{name}.yaml") for name in raw}


def _resolved(name: str, raw: Mapping[str, dict], seen: tuple[str, ...]) -> dict:
    data = raw[name]
    parent = data.get("extends")
    if parent is None:
        return data
    if parent not in raw:
        raise ProfileError(f"{name}.yaml: extends {parent!r}, which is not a profile")
    if parent in (*seen, name):
        raise ProfileError(f"{name}.yaml: extends itself through {' -> '.join((*seen, name, parent))}")
    merged = {k: v for k, v in _resolved(parent, raw, (*seen, name)).items()
              if k not in ("name", "match", "priority", "description", "extends", "agent")}
    for key, value in data.items():
        if key == "identity" and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {f: _joined(value.get(f), merged[key].get(f)) for f in {**merged[key], **value}}
        elif isinstance(value, dict) and isinstance(merged.get(key), dict) and key in _SECTIONS:
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _joined(child: object, parent: object) -> list:
    """A child's identity chain joined with its parent's (the child's first), or its ``only`` chain."""
    only = _only_chain(child)
    if only is not None:
        return _listed(only)
    return _listed(child) + [s for s in _listed(parent) if s not in _listed(child)]


def _only_chain(spec: object) -> object:
    """The chain of ``{only: chain}``, which replaces what a parent gives; else None."""
    return spec["only"] if isinstance(spec, dict) and set(spec) == {"only"} else None


def _listed(spec: object) -> list:
    return [] if spec is None else list(spec) if isinstance(spec, list) else [spec]


def _tier(source: Source) -> int:
    """Where an identity source stands in its chain: standard MIBs by ``_IDENTITY_TIERS``, then
    vendor OIDs and constants, then sysDescr patterns."""
    if source.sys_descr is not None:
        return len(_IDENTITY_TIERS) + 1
    oid = source.get or source.walk or ""
    return next((i for i, prefix in enumerate(_IDENTITY_TIERS) if oids.is_under(oid, prefix)),
                len(_IDENTITY_TIERS))


def parse_profile(data: dict, where: str) -> Profile:
    _only(data, {"name", "kind", "description", "priority", "match", "extends", "agent"} | _SECTIONS, where)
    kind = data.get("kind")
    if kind not in set(DeviceKind):
        raise ProfileError(f"{where}: kind must be one of {', '.join(DeviceKind)}")
    priority = data.get("priority", 0)
    if not isinstance(priority, int):
        raise ProfileError(f"{where}: priority must be an integer")
    if data.get("agent", "device") not in ("device", "card"):
        raise ProfileError(f"{where}: agent is device (the default) or card")
    scalars = {
        section: {name: _sources(spec, section, name, f"{where}: {section}.{name}")
                  for name, spec in _mapping(data[section], f"{where}: {section}").items()}
        for section in fields.SCALARS if section in data
    }
    if "identity" in scalars:
        card = data.get("agent") == "card"
        scalars["identity"] = {name: ordered for name, chain in scalars["identity"].items()
                               if (ordered := tuple(sorted((s for s in chain if not (card and s.sys_descr)),
                                                           key=_tier)))}
    tables = {
        section: {name: _column(spec, section, name, f"{where}: {section}.{name}")
                  for name, spec in _mapping(data[section], f"{where}: {section}").items()}
        for section in fields.TABLES if section in data
    }
    match = _match(data.get("match", {}), f"{where}: match")
    if match.empty and kind != DeviceKind.HOST:
        raise ProfileError(f"{where}: match: only a host profile may match every device")
    return Profile(str(data["name"]), DeviceKind(kind), str(data.get("description", "")), priority, match,
                   scalars, tables)


def _match(spec: object, where: str) -> Match:
    spec = _mapping(spec or {}, where)
    _only(spec, {"sys_object_id", "sys_descr", "present", "answers"}, where)
    present = []
    for i, probe in enumerate(_list(spec.get("present", []))):
        if isinstance(probe, dict):
            _only(probe, {"oid", "unless"}, f"{where}.present[{i}]")
            present.append(Probe(_oid(probe.get("oid"), f"{where}.present[{i}]"), _texts(probe.get("unless", []))))
        else:
            present.append(Probe(_oid(probe, f"{where}.present[{i}]")))
    answers = []
    for i, answer in enumerate(_list(spec.get("answers", []))):
        if isinstance(answer, dict):
            _only(answer, {"column", "equals"}, f"{where}.answers[{i}]")
            if "equals" not in answer:
                raise ProfileError(f"{where}.answers[{i}]: give column and equals")
            answers.append(Answer(_oid(answer.get("column"), f"{where}.answers[{i}].column"), str(answer["equals"])))
        else:
            answers.append(Answer(_oid(answer, f"{where}.answers[{i}]")))
    match = Match(tuple(_oid(o, f"{where}.sys_object_id") for o in _list(spec.get("sys_object_id", []))),
                  _regex(spec["sys_descr"], f"{where}.sys_descr") if "sys_descr" in spec else None,
                  tuple(present), tuple(answers))
    if match.present and not (match.sys_object_id or match.sys_descr or match.answers):
        raise ProfileError(f"{where}: present only narrows a match on sys_object_id, sys_descr or answers: "
                           "no single object is what every device of a kind answers")
    return match


def _sources(spec: object, section: str, name: str, where: str) -> tuple[Source, ...]:
    only = _only_chain(spec)
    spec = only if only is not None else spec
    specs = spec if isinstance(spec, list) else [spec]
    if not specs:
        raise ProfileError(f"{where}: give at least one source")
    return tuple(_source(s, section, name, f"{where}[{i}]" if len(specs) > 1 else where) for i, s in enumerate(specs))


def _column(spec: object, section: str, name: str, where: str) -> tuple[Source, ...]:
    """A table field: a column, or columns tried in order for each row (the first with a value wins)."""
    sources = _sources(spec, section, name, where)
    if any(source.walk is None or source.reduce != "first" for source in sources):
        raise ProfileError(f"{where}: a table field is a column (or columns): walk: OID, without reduce")
    return sources


def _source(spec: object, section: str, name: str, where: str) -> Source:
    unit = fields.unit_of(section, name)
    if unit is None:
        raise ProfileError(f"{where}: {section} has no field {name!r}")
    spec = _mapping(spec, where)
    _only(spec, _SOURCE_KEYS | _MODIFIERS, where)
    given = [k for k in _SOURCE_KEYS if k in spec]
    if len(given) != 1:
        raise ProfileError(f"{where}: give exactly one of get, walk, sys_descr, value")
    reduce = spec.get("reduce", "first")
    if reduce not in REDUCERS or (reduce != "first" and "walk" not in spec):
        raise ProfileError(f"{where}: reduce is one of {', '.join(REDUCERS)} and only applies to walk")
    if reduce in ("sum", "max", "min") and unit not in fields.NUMERIC:
        raise ProfileError(f"{where}: reduce {reduce} needs a numeric field, not {unit}")
    if reduce == "count" and unit != fields.COUNT:
        raise ProfileError(f"{where}: reduce count fills a count field")
    if unit == fields.BOOL and "map" not in spec and "value" not in spec:
        raise ProfileError(f"{where}: a yes/no field needs a map from raw values to true/false")
    if unit == fields.FLAGS and "bits" not in spec:
        raise ProfileError(f"{where}: a flags field needs bits: [names]")
    if ("scale" in spec or "decimals" in spec) and unit not in fields.NUMERIC:
        raise ProfileError(f"{where}: scale and decimals apply to numbers, not {unit}")
    if ("decimals" in spec or "suffix" in spec) and not ("get" in spec or "walk" in spec):
        raise ProfileError(f"{where}: decimals and suffix apply to get or walk")
    if "suffix" in spec and "walk" not in spec:
        raise ProfileError(f"{where}: suffix applies to walk")
    source = Source(
        get=_oid(spec["get"], f"{where}.get") if "get" in spec else None,
        walk=_oid(spec["walk"], f"{where}.walk") if "walk" in spec else None,
        sys_descr=_regex(spec["sys_descr"], f"{where}.sys_descr", groups=1) if "sys_descr" in spec else None,
        value=spec.get("value"),
        reduce=reduce,
        where=tuple(_where(w, f"{where}.where") for w in _list(spec["where"])) if "where" in spec else (),
        scale=_scale(spec["scale"], unit, f"{where}.scale") if "scale" in spec else 1.0,
        decimals=_oid(spec["decimals"], f"{where}.decimals") if "decimals" in spec else None,
        suffix=_suffix(spec["suffix"], f"{where}.suffix") if "suffix" in spec else None,
        invalid=_texts(spec.get("invalid", [])),
        map={str(k): v for k, v in _mapping(spec["map"], f"{where}.map").items()} if "map" in spec else None,
        pattern=_regex(spec["pattern"], f"{where}.pattern", groups=1) if "pattern" in spec else None,
        strip_prefix=str(spec.get("strip_prefix", "")),
        bits=tuple(str(b) for b in _list(spec.get("bits", []))),
    )
    if source.map is not None and unit == fields.BOOL and not all(isinstance(v, bool) for v in source.map.values()):
        raise ProfileError(f"{where}.map: a yes/no field maps to true or false")
    return source


def _scale(value: object, unit: str, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    number, _, written = str(value).strip().partition(" ")
    try:
        factor = float(number)
    except ValueError:
        raise ProfileError(f"{where}: expected a number with an optional unit, e.g. 0.1 kWh") from None
    if not written:
        return factor
    base, to_base = fields.UNITS.get(written.strip(), (None, 0.0))
    if base is None:
        raise ProfileError(f"{where}: unknown unit {written!r} (known: {', '.join(fields.UNITS)})")
    if base != unit:
        raise ProfileError(f"{where}: {written} does not convert to this field's unit ({unit})")
    return factor * to_base


def _suffix(value: object, where: str) -> str:
    text = str(value).strip(".")
    if not re.fullmatch(r"\d+(\.\d+)*", text):
        raise ProfileError(f"{where}: expected the last arc(s) of an index, e.g. 5")
    return text


def _where(spec: object, where: str) -> tuple[str, str]:
    spec = _mapping(spec, where)
    _only(spec, {"column", "equals"}, where)
    if "equals" not in spec:
        raise ProfileError(f"{where}: give column and equals")
    return _oid(spec.get("column"), f"{where}.column"), str(spec["equals"])


def _oid(value: object, where: str) -> str:
    try:
        return oids.normalize(str(value))
    except ValueError as exc:
        raise ProfileError(f"{where}: {exc}") from None


def _regex(value: object, where: str, groups: int = 0) -> re.Pattern:
    try:
        pattern = re.compile(str(value))
    except re.error as exc:
        raise ProfileError(f"{where}: not a regular expression: {exc}") from None
    if pattern.groups < groups:
        raise ProfileError(f"{where}: needs a (group) around the part to keep")
    return pattern


def _texts(values: object) -> frozenset[str]:
    return frozenset(str(v) for v in _list(values))


def _list(value: object) -> list:
    return value if isinstance(value, list) else [value]


def _mapping(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise ProfileError(f"{where}: expected a mapping")
    return value


def _only(spec: dict, allowed: set[str], where: str) -> None:
    extra = sorted(str(k) for k in spec if k not in allowed)
    if extra:
        raise ProfileError(f"{where}: unknown key(s) {', '.join(extra)}")
