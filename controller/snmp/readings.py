"""What a poll found, as frozen dataclasses, and the few rules that need more than one field.

Field names follow ``fields.py``; numbers are in base units. ``None`` always means "the device did
not say" (missing, or a value it uses for "not supported"), never zero. The cross-field rules live
here because they are about meaning, not about any vendor: a UPS that reports 0 W output under a
real load has not measured its output; a Printer-MIB level of -3 means "some left".
"""

from __future__ import annotations

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
    identity = _identity(s.get("identity", {}), system, notes)
    power = None
    if s.get("power"):
        p = _values(s["power"])
        power = Power(p.get("watts"), p.get("peak_watts"), p.get("apparent_va"), p.get("power_factor"),
                      p.get("current_amps"), p.get("voltage_volts"), _energy(s["power"], "energy_joules", p))
    outlets = tuple(Outlet(index, *(_values(row).get(f) for f in ("name", "powered", "watts", "current_amps")),
                           energy=_energy(row, "energy_joules", {})) for index, row in t.get("outlets", {}).items())
    printer = None
    if s.get("printer") or t.get("supplies"):
        p = _values(s.get("printer", {}))
        supplies = tuple(_supply(index, _values(row)) for index, row in t.get("supplies", {}).items())
        printer = Printer(p.get("life_count"), p.get("counter_unit"), p.get("status"), tuple(p.get("errors", ())),
                          supplies)
    poe = None
    if s.get("poe") or t.get("poe_ports"):
        p = _values(s.get("poe", {}))
        ports = tuple(PoePort(index, *(_values(row).get(f) for f in ("name", "watts", "delivering")))
                      for index, row in t.get("poe_ports", {}).items())
        poe = Poe(p.get("budget_watts"), p.get("consumption_watts"), ports)
    ups = _ups(s.get("ups", {}), t.get("ups_outputs", {}), notes) if s.get("ups") or t.get("ups_outputs") else None
    host = None
    if s.get("host"):
        p = _values(s["host"])
        host = Host(p.get("uptime_seconds"), p.get("memory_bytes"), p.get("processors"))
    return Sections(identity, power, outlets, printer, poe, ups, host, tuple(notes))


def supply_percent(level: int | None, capacity: int | None) -> float | None:
    """Printer-MIB level as a percentage of capacity; the negative codes carry no percentage."""
    if level is None or capacity is None or level < 0 or capacity <= 0:
        return None
    return round(min(level, capacity) * 100 / capacity, 1)


def _values(measured: Mapping[str, Measured]) -> dict[str, object]:
    return {name: m.value for name, m in measured.items()}


def _energy(measured: Mapping[str, Measured], name: str, values: Mapping[str, object]) -> EnergyCounter | None:
    counter = measured.get(name)
    if counter is None:
        return None
    since = values.get("energy_since")
    return EnergyCounter(float(counter.value), counter.wraps_at, str(since) if since is not None else None,
                         counter.step)


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


def _supply(index: str, row: Mapping[str, object]) -> Supply:
    level, capacity = row.get("level"), row.get("capacity")
    return Supply(index, row.get("description"), row.get("kind"), level, capacity,
                  supply_percent(level, capacity))


def _ups(measured: Mapping[str, Measured], table: Mapping[str, Row], notes: list[str]) -> Ups:
    u = _values(measured)
    outputs = [UpsOutput(index, *(_values(row).get(f) for f in ("watts", "load_percent", "voltage_volts",
                                                                  "current_amps"))) for index, row in table.items()]
    loads = [o.load_percent for o in outputs if o.load_percent is not None]
    load = u.get("load_percent", max(loads) if loads else None)
    watts = u.get("output_watts")
    if watts is not None and float(watts) == 0 and load:
        notes.append(f"UPS reports 0 W output at {load:g}% load: output power treated as not measured")
        watts = None
        outputs = [UpsOutput(o.index, None if not o.watts else o.watts, o.load_percent, o.voltage_volts,
                             o.current_amps) for o in outputs]
    return Ups(u.get("output_source"), u.get("battery_percent"), u.get("runtime_seconds"), watts, load,
               u.get("output_voltage_volts"), u.get("output_current_amps"), tuple(outputs))
