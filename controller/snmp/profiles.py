"""Device profiles: YAML data that says how to recognise a device family and where its readings live.

A profile (one file in ``profiles/``, named after it) has a ``match`` block and sections from
``fields.py``. Each scalar field is a source or a list of sources tried in order (the first that
yields a usable value wins); each table field is one column. A source is one of::

    get: OID                      a scalar
    walk: OID                     a column, reduced with reduce: first|sum|max|min|count
                                  optionally filtered: where: {column: OID, equals: VALUE}
    sys_descr: REGEX              the first group of a match on sysDescr
    value: CONSTANT

with modifiers ``scale`` ("10 W", "0.1 kWh", or a bare factor), ``invalid`` (raw values that mean
"not supported", such as -1), ``map`` (raw value to text or boolean), ``pattern`` (a regex whose
first group is kept), ``strip_prefix`` and ``bits`` (names of the bits of an octet string, most
significant bit of the first octet first). ``extends: NAME`` starts from another profile and
replaces it field by field. Everything is checked on load; code never names a vendor.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from controller.snmp import fields, oids

PROFILES_DIR = Path(__file__).parent / "profiles"
KINDS = ("printer", "switch", "pdu", "ups", "host")
REDUCERS = ("first", "sum", "max", "min", "count")
_SOURCE_KEYS = {"get", "walk", "sys_descr", "value"}
_MODIFIERS = {"reduce", "where", "scale", "invalid", "map", "pattern", "strip_prefix", "bits"}
_SECTIONS = set(fields.SCALARS) | set(fields.TABLES)


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the file and the place in it."""


@dataclass(frozen=True)
class Source:
    get: str | None = None
    walk: str | None = None
    sys_descr: re.Pattern | None = None
    value: object = None
    reduce: str = "first"
    where: tuple[str, str] | None = None  # (column OID, raw value as text)
    scale: float = 1.0
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
class Match:
    """Every condition given must hold; ``sys_object_id`` holds when any prefix does. Empty matches all."""

    sys_object_id: tuple[str, ...] = ()
    sys_descr: re.Pattern | None = None
    present: tuple[Probe, ...] = ()


@dataclass(frozen=True)
class Profile:
    name: str
    kind: str
    description: str
    priority: int
    match: Match
    scalars: Mapping[str, Mapping[str, tuple[Source, ...]]] = field(default_factory=dict)
    tables: Mapping[str, Mapping[str, Source]] = field(default_factory=dict)


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
              if k not in ("name", "match", "priority", "description", "extends")}
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key in _SECTIONS:
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def parse_profile(data: dict, where: str) -> Profile:
    _only(data, {"name", "kind", "description", "priority", "match", "extends"} | _SECTIONS, where)
    kind = data.get("kind")
    if kind not in KINDS:
        raise ProfileError(f"{where}: kind must be one of {', '.join(KINDS)}")
    priority = data.get("priority", 0)
    if not isinstance(priority, int):
        raise ProfileError(f"{where}: priority must be an integer")
    scalars = {
        section: {name: _sources(spec, section, name, f"{where}: {section}.{name}")
                  for name, spec in _mapping(data[section], f"{where}: {section}").items()}
        for section in fields.SCALARS if section in data
    }
    tables = {
        section: {name: _column(spec, section, name, f"{where}: {section}.{name}")
                  for name, spec in _mapping(data[section], f"{where}: {section}").items()}
        for section in fields.TABLES if section in data
    }
    return Profile(str(data["name"]), kind, str(data.get("description", "")), priority,
                   _match(data.get("match", {}), f"{where}: match"), scalars, tables)


def _match(spec: object, where: str) -> Match:
    spec = _mapping(spec or {}, where)
    _only(spec, {"sys_object_id", "sys_descr", "present"}, where)
    present = []
    for i, probe in enumerate(_list(spec.get("present", []))):
        if isinstance(probe, dict):
            _only(probe, {"oid", "unless"}, f"{where}.present[{i}]")
            present.append(Probe(_oid(probe.get("oid"), f"{where}.present[{i}]"), _texts(probe.get("unless", []))))
        else:
            present.append(Probe(_oid(probe, f"{where}.present[{i}]")))
    return Match(tuple(_oid(o, f"{where}.sys_object_id") for o in _list(spec.get("sys_object_id", []))),
                 _regex(spec["sys_descr"], f"{where}.sys_descr") if "sys_descr" in spec else None,
                 tuple(present))


def _sources(spec: object, section: str, name: str, where: str) -> tuple[Source, ...]:
    specs = spec if isinstance(spec, list) else [spec]
    if not specs:
        raise ProfileError(f"{where}: give at least one source")
    return tuple(_source(s, section, name, f"{where}[{i}]" if len(specs) > 1 else where) for i, s in enumerate(specs))


def _column(spec: object, section: str, name: str, where: str) -> Source:
    source = _source(spec, section, name, where)
    if source.walk is None or source.reduce != "first" or source.where is not None:
        raise ProfileError(f"{where}: a table field is one column: walk: OID, without reduce or where")
    return source


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
    if "scale" in spec and unit not in fields.NUMERIC:
        raise ProfileError(f"{where}: scale applies to numbers, not {unit}")
    source = Source(
        get=_oid(spec["get"], f"{where}.get") if "get" in spec else None,
        walk=_oid(spec["walk"], f"{where}.walk") if "walk" in spec else None,
        sys_descr=_regex(spec["sys_descr"], f"{where}.sys_descr", groups=1) if "sys_descr" in spec else None,
        value=spec.get("value"),
        reduce=reduce,
        where=_where(spec["where"], f"{where}.where") if "where" in spec else None,
        scale=_scale(spec["scale"], unit, f"{where}.scale") if "scale" in spec else 1.0,
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
