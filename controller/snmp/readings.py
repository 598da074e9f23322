"""What a poll found, as frozen dataclasses, and the few rules that need more than one field.

Field names follow ``fields.py``; numbers are in base units. ``None`` always means "the device did
not say" (missing, or a value it uses for "not supported"), never zero. The cross-field rules live
here because they are about meaning, not about any vendor: a UPS that reports 0 W output under a
real load has not measured its output; a Printer-MIB level of -3 means "some left".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from controller.snmp.collect import Evaluation, Measured, Row

#: Serial and model strings that are placeholders, not identities (DOMAIN.md lists the usual ones;
#: "<private>" is how scrubbed recordings stand in for a value).
PLACEHOLDERS = frozenset({"", "<private>", "n/a", "na", "none", "unknown", "default string", "to be filled by o.e.m.",
                          "system serial number", "0123456789", "notsupported", "not supported", "-1"})


@dataclass(frozen=True)
class Identity:
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    sys_object_id: str | None = None
    sys_descr: str | None = None
    sys_name: str | None = None


@dataclass(frozen=True)
class EnergyCounter:
    """A device's cumulative energy register. ``since`` is the device's own note of when it was last
    reset, where it keeps one; a change in it means a reset even if the count went up."""

    joules: float
    wraps_at_joules: float | None = None
    since: str | None = None
    resolution_joules: float | None = None  # one count of the register: 0.1 kWh is 360 kJ


@dataclass(frozen=True)
class Power:
    watts: float | None = None
    peak_watts: float | None = None
    apparent_va: float | None = None
    power_factor: float | None = None
    current_amps: float | None = None
    voltage_volts: float | None = None
    energy: EnergyCounter | None = None


@dataclass(frozen=True)
class Outlet:
    index: str
    name: str | None = None
    powered: bool | None = None
    watts: float | None = None
    current_amps: float | None = None
    energy: EnergyCounter | None = None


@dataclass(frozen=True)
class Supply:
    index: str
    description: str | None = None
    kind: str | None = None
    level: int | None = None  # Printer-MIB: -1 other, -2 unknown, -3 some remaining
    capacity: int | None = None  # -1 no restriction, -2 unknown
    percent: float | None = None


@dataclass(frozen=True)
class Printer:
    life_count: int | None = None
    counter_unit: str | None = None
    status: str | None = None
    errors: tuple[str, ...] = ()
    supplies: tuple[Supply, ...] = ()


@dataclass(frozen=True)
class PoePort:
    index: str
    name: str | None = None
    watts: float | None = None
    delivering: bool | None = None


@dataclass(frozen=True)
class Poe:
    budget_watts: float | None = None
    consumption_watts: float | None = None
    ports: tuple[PoePort, ...] = ()


@dataclass(frozen=True)
class UpsOutput:
    index: str
    watts: float | None = None
    load_percent: float | None = None
    voltage_volts: float | None = None
    current_amps: float | None = None


@dataclass(frozen=True)
class Ups:
    output_source: str | None = None
    battery_percent: float | None = None
    runtime_seconds: float | None = None
    output_watts: float | None = None
    load_percent: float | None = None
    output_voltage_volts: float | None = None
    output_current_amps: float | None = None
    outputs: tuple[UpsOutput, ...] = ()


@dataclass(frozen=True)
class Host:
    uptime_seconds: float | None = None
    memory_bytes: float | None = None
    processors: int | None = None


@dataclass(frozen=True)
class DevicePoll:
    """One poll of one address. ``error`` is set when nothing useful could be read."""

    address: str
    port: int
    at: datetime
    profile: str | None = None
    kind: str | None = None
    credential: str | None = None  # the name of the credential that worked, never its secret
    identity: Identity | None = None
    power: Power | None = None
    outlets: tuple[Outlet, ...] = ()
    printer: Printer | None = None
    poe: Poe | None = None
    ups: Ups | None = None
    host: Host | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Sections:
    identity: Identity
    power: Power | None
    outlets: tuple[Outlet, ...]
    printer: Printer | None
    poe: Poe | None
    ups: Ups | None
    host: Host | None
    notes: tuple[str, ...]


def build(evaluation: Evaluation, system: Identity) -> Sections:
    """Readings from an evaluated profile; ``system`` carries what identification read (sysDescr…).

    A section the device said nothing about is None, so "no power data" never looks like 0 W.
    """
    notes: list[str] = []
    s, t = evaluation.scalars, evaluation.tables
    power = printer = poe = host = ups = None
    if s.get("power"):
        power = Power(**_pick(Power, s["power"]), energy=_energy(s["power"]))
    outlets = tuple(Outlet(index, **_pick(Outlet, row), energy=_energy(row))
                    for index, row in t.get("outlets", {}).items())
    if s.get("printer") or t.get("supplies"):
        supplies = tuple(_supply(index, row) for index, row in t.get("supplies", {}).items())
        printer = Printer(**_pick(Printer, s.get("printer", {})), supplies=supplies)
    if s.get("poe") or t.get("poe_ports"):
        ports = tuple(PoePort(index, **_pick(PoePort, row)) for index, row in t.get("poe_ports", {}).items())
        poe = Poe(**_pick(Poe, s.get("poe", {})), ports=ports)
    if s.get("ups") or t.get("ups_outputs"):
        ups = _ups(s.get("ups", {}), t.get("ups_outputs", {}), notes)
    if s.get("host"):
        host = Host(**_pick(Host, s["host"]))
    identity = _identity(s.get("identity", {}), system, notes)
    return Sections(identity, power, outlets, printer, poe, ups, host, tuple(notes))


def supply_percent(level: int | None, capacity: int | None) -> float | None:
    """Printer-MIB level as a percentage of capacity; the negative codes carry no percentage."""
    if level is None or capacity is None or level < 0 or capacity <= 0:
        return None
    return round(min(level, capacity) * 100 / capacity, 1)


def _pick(cls: type, measured: Mapping[str, Measured]) -> dict[str, object]:
    """The measured values that are plain fields of ``cls`` (not the counters, built apart)."""
    names = {f.name for f in dataclasses.fields(cls)} - {"index", "energy"}
    return {name: m.value for name, m in measured.items() if name in names}


def _energy(measured: Mapping[str, Measured]) -> EnergyCounter | None:
    counter, since = measured.get("energy_joules"), measured.get("energy_since")
    if counter is None:
        return None
    return EnergyCounter(float(counter.value), counter.wraps_at, str(since.value) if since else None, counter.step)


def _identity(measured: Mapping[str, Measured], system: Identity, notes: list[str]) -> Identity:
    values = {}
    for name in ("vendor", "model", "serial", "firmware"):
        value = measured.get(name)
        text = str(value.value).strip() if value is not None else None
        if text is not None and (text.lower() in PLACEHOLDERS or set(text) <= {"0"}):
            notes.append(f"ignored placeholder {name} {text!r}")
            text = None
        values[name] = text
    sys_name = system.sys_name if system.sys_name and system.sys_name.lower() not in PLACEHOLDERS else None
    return Identity(**values, sys_object_id=system.sys_object_id, sys_descr=system.sys_descr, sys_name=sys_name)


def _supply(index: str, measured: Mapping[str, Measured]) -> Supply:
    fields = _pick(Supply, measured)
    return Supply(index, **fields, percent=supply_percent(fields.get("level"), fields.get("capacity")))


def _ups(measured: Mapping[str, Measured], table: Mapping[str, Row], notes: list[str]) -> Ups:
    outputs = [UpsOutput(index, **_pick(UpsOutput, row)) for index, row in table.items()]
    ups = Ups(**_pick(Ups, measured), outputs=tuple(outputs))
    loads = [o.load_percent for o in outputs if o.load_percent is not None]
    if ups.load_percent is None and loads:
        ups = dataclasses.replace(ups, load_percent=max(loads))
    if ups.output_watts == 0 and ups.load_percent:
        notes.append(f"UPS reports 0 W output at {ups.load_percent:g}% load: output power treated as not measured")
        ups = dataclasses.replace(ups, output_watts=None, outputs=tuple(
            dataclasses.replace(o, watts=o.watts or None) for o in outputs))
    return ups
