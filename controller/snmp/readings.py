"""What a poll found, as frozen dataclasses, and the few rules that need more than one field.

Field names follow ``fields.py``; numbers are in base units. ``None`` always means "the device did
not say" (missing, or a value it uses for "not supported"), never zero. The cross-field rules live
here because they are about meaning, not about any vendor:

- identity: a serial or name that is a placeholder is absent, by the register's own rule
  (``controller.register.identity``), and the note says why; a device no profile names the maker of
  gets the vendor its enterprise number is registered to (``enterprises.py``), and says so;
- a UPS that reports 0 W or 0 A of output under a real load has not measured it; a UPS's load
  percentage becomes watts only with its rating, and only as a figure labelled derived (it is not
  metered energy); a PDU that answers SNMP while reporting 0 V has not measured its power either;
- PoE consumption: where the standard POWER-ETHERNET-MIB and a vendor MIB both report it and
  disagree, the standard's figure is the consumption (RFC 3621 defines it as measured usage; vendor
  figures such as a switch maker's "used power" can count power allocated to a port's class) and the vendor's
  is kept beside it; a vendor figure alone is the consumption, and per-port watts alone add up to it;
- a Printer-MIB supply level of -1, -2 or -3 is a named state (other, unknown, some remaining),
  never a number; so is a capacity of -1 or -2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from controller.register.identity import name_verdict, serial_verdict
from controller.snmp.collect import Evaluation, Measured, Row
from controller.snmp.enterprises import enterprise_of

#: Printer-MIB prtMarkerSuppliesLevel below zero (RFC 3805).
SUPPLY_LEVELS = {-1: "other", -2: "unknown", -3: "some remaining"}
#: Printer-MIB prtMarkerSuppliesMaxCapacity below zero.
SUPPLY_CAPACITIES = {-1: "no maximum", -2: "unknown"}
#: Two PoE figures closer than this (watts, or a share of the larger) agree.
POE_AGREE_WATTS, POE_AGREE_SHARE = 1.0, 0.05


@dataclass(frozen=True)
class Identity:
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    sys_object_id: str | None = None
    sys_descr: str | None = None
    sys_name: str | None = None
    vendor_from: str | None = None  # where the vendor came from when no profile said it


@dataclass(frozen=True)
class Chassis:
    """One physical unit: a member of a stack, an access point of a cluster. Each is its own asset."""

    index: str
    name: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None


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
    frequency_hz: float | None = None
    energy: EnergyCounter | None = None


@dataclass(frozen=True)
class Outlet:
    index: str
    name: str | None = None
    powered: bool | None = None
    watts: float | None = None
    current_amps: float | None = None
    voltage_volts: float | None = None
    energy: EnergyCounter | None = None


@dataclass(frozen=True)
class Supply:
    index: str
    description: str | None = None
    kind: str | None = None
    level: int | None = None  # in units of capacity; a special level is ``state`` instead
    capacity: int | None = None
    percent: float | None = None
    state: str | None = None  # "some remaining", "unknown", "other": a level that is no number
    capacity_state: str | None = None  # "no maximum", "unknown"


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
class PoeGroup:
    """One power source (a stack member's PSE): its budget and what it delivers."""

    index: str
    budget_watts: float | None = None
    consumption_watts: float | None = None
    vendor_consumption_watts: float | None = None


@dataclass(frozen=True)
class Poe:
    budget_watts: float | None = None
    consumption_watts: float | None = None  # the figure used (see the module docstring)
    vendor_consumption_watts: float | None = None  # a vendor MIB's figure, kept when the standard's is used
    groups: tuple[PoeGroup, ...] = ()
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
    output_watts: float | None = None  # measured by the UPS
    load_percent: float | None = None
    rated_watts: float | None = None
    derived_watts: float | None = None  # load × rating: an estimate, never metered
    output_voltage_volts: float | None = None
    output_current_amps: float | None = None
    output_frequency_hz: float | None = None
    battery_voltage_volts: float | None = None
    battery_temperature_celsius: float | None = None
    outputs: tuple[UpsOutput, ...] = ()


@dataclass(frozen=True)
class Host:
    uptime_seconds: float | None = None
    memory_bytes: float | None = None
    processors: int | None = None


@dataclass(frozen=True)
class Subtree:
    oid: str
    name: str  # the standard MIB, or the enterprise it is registered to


@dataclass(frozen=True)
class Unexplained:
    """What the device answered that no profile interpreted, for an operator to report: the kind
    Caretaker guesses, the vendor, the sysObjectID, and the subtrees seen but not read."""

    kind_guessed: str
    vendor: str | None
    sys_object_id: str | None
    subtrees: tuple[Subtree, ...] = ()


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
    chassis: tuple[Chassis, ...] = ()
    power: Power | None = None
    outlets: tuple[Outlet, ...] = ()
    printer: Printer | None = None
    poe: Poe | None = None
    ups: Ups | None = None
    host: Host | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None
    unexplained: Unexplained | None = None  # last, as the command line shows it

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Sections:
    identity: Identity
    chassis: tuple[Chassis, ...]
    power: Power | None
    outlets: tuple[Outlet, ...]
    printer: Printer | None
    poe: Poe | None
    ups: Ups | None
    host: Host | None
    notes: tuple[str, ...]


def build(evaluation: Evaluation, system: Identity, answered: Sequence[str] = ()) -> Sections:
    """Readings from an evaluated profile; ``system`` carries what identification read (sysDescr…),
    ``answered`` the subtrees the profile recognised the device by (a vendor's: the maker of last resort).

    A section the device said nothing about is None, so "no power data" never looks like 0 W.
    """
    notes: list[str] = []
    s, t = evaluation.scalars, evaluation.tables
    power = printer = poe = host = ups = None
    if s.get("power"):
        power = _power(Power(**_pick(Power, s["power"]), energy=_energy(s["power"])), notes)
    outlets = tuple(Outlet(index, **_pick(Outlet, row), energy=_energy(row))
                    for index, row in t.get("outlets", {}).items())
    if s.get("printer") or t.get("supplies"):
        supplies = tuple(_supply(index, row) for index, row in t.get("supplies", {}).items())
        printer = Printer(**_pick(Printer, s.get("printer", {})), supplies=supplies)
    if s.get("poe") or t.get("poe_ports") or t.get("poe_groups"):
        poe = _poe(s.get("poe", {}), t.get("poe_groups", {}), t.get("poe_ports", {}), notes)
    if s.get("ups") or t.get("ups_outputs"):
        ups = _ups(s.get("ups", {}), t.get("ups_outputs", {}), notes)
    if s.get("host"):
        host = Host(**_pick(Host, s["host"]))
    identity = _identity(s.get("identity", {}), system, answered, notes)
    chassis = tuple(c for index, row in t.get("chassis", {}).items()
                    if (c := _chassis(index, row, identity.vendor, notes)).model or c.serial)
    return Sections(identity, chassis, power, outlets, printer, poe, ups, host, tuple(dict.fromkeys(notes)))


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


def _identity(measured: Mapping[str, Measured], system: Identity, answered: Sequence[str],
              notes: list[str]) -> Identity:
    values: dict[str, str | None] = {}
    for name in ("vendor", "model", "firmware"):
        value = measured.get(name)
        values[name] = _kept(name_verdict(name, str(value.value)) if value is not None else (None, None), notes)
    vendor_from = None
    if values["vendor"] is None:
        values["vendor"], vendor_from = _registered_vendor(system.sys_object_id, answered)
    serial = measured.get("serial")
    values["serial"] = _kept(serial_verdict(str(serial.value), values["vendor"]) if serial else (None, None), notes)
    sys_name = name_verdict("sysName", system.sys_name)[0]
    return Identity(**values, sys_object_id=system.sys_object_id, sys_descr=system.sys_descr, sys_name=sys_name,
                    vendor_from=vendor_from)


def _kept(verdict: tuple[str | None, str | None], notes: list[str]) -> str | None:
    value, note = verdict
    if note:
        notes.append(note)
    return value


def _registered_vendor(sys_object_id: str | None, answered: Sequence[str]) -> tuple[str | None, str | None]:
    """The maker by enterprise number: the sysObjectID's, unless that is agent software (net-snmp),
    then that of the first vendor subtree the device was recognised by."""
    for oid, where in ((sys_object_id, "sysObjectID"), *((a, "its answers") for a in answered)):
        found = enterprise_of(oid)
        if found is not None and not found.agent:
            return found.vendor, f"enterprise {found.number} in {where} (IANA registry)"
    return None, None


def _chassis(index: str, row: Mapping[str, Measured], vendor: str | None, notes: list[str]) -> Chassis:
    text = {name: str(m.value) for name, m in row.items()}
    serial = serial_verdict(text.get("serial"), vendor) if "serial" in text else (None, None)
    return Chassis(index, text.get("name"), name_verdict("model", text.get("model"))[0], _kept(serial, notes),
                   text.get("firmware"))


def _supply(index: str, measured: Mapping[str, Measured]) -> Supply:
    fields = _pick(Supply, measured)
    level, capacity = fields.pop("level", None), fields.pop("capacity", None)
    return Supply(index, **fields, level=level if level is None or level >= 0 else None,
                  capacity=capacity if capacity is None or capacity > 0 else None,
                  percent=supply_percent(level, capacity), state=SUPPLY_LEVELS.get(level),
                  capacity_state=SUPPLY_CAPACITIES.get(capacity))


def _poe(measured: Mapping[str, Measured], groups: Mapping[str, Row], ports: Mapping[str, Row],
         notes: list[str]) -> Poe:
    rows = tuple(PoeGroup(index, **_pick(PoeGroup, row)) for index, row in groups.items())
    found = _pick(Poe, measured)
    for name in ("budget_watts", "consumption_watts", "vendor_consumption_watts"):
        if found.get(name) is None and any(getattr(g, name) is not None for g in rows):
            found[name] = round(sum(getattr(g, name) or 0.0 for g in rows), 3)
    poe = Poe(**found, groups=rows, ports=tuple(PoePort(index, **_pick(PoePort, row)) for index, row in ports.items()))
    standard, vendor = poe.consumption_watts, poe.vendor_consumption_watts
    if standard is None and vendor is not None:
        return dataclasses.replace(poe, consumption_watts=vendor)
    if standard is not None and vendor is not None and abs(standard - vendor) > max(
            POE_AGREE_WATTS, POE_AGREE_SHARE * max(standard, vendor)):
        notes.append(f"PoE consumption: POWER-ETHERNET-MIB says {standard:g} W, the vendor MIB {vendor:g} W; "
                     "the standard's measured figure is used and the vendor's kept beside it")
    watts = [p.watts for p in poe.ports if p.watts is not None]
    if poe.consumption_watts is None and watts:
        return dataclasses.replace(poe, consumption_watts=round(sum(watts), 3))
    return poe


def _power(power: Power, notes: list[str]) -> Power:
    if power.voltage_volts != 0:
        return power
    notes.append("PDU reports 0 V while it answers: its voltage, current and power treated as not measured")
    return dataclasses.replace(power, voltage_volts=None, current_amps=power.current_amps or None,
                               watts=power.watts or None, apparent_va=power.apparent_va or None)


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
    if ups.output_current_amps == 0 and ups.load_percent:
        notes.append(f"UPS reports 0 A output at {ups.load_percent:g}% load: output current treated as not measured")
        ups = dataclasses.replace(ups, output_current_amps=None)
    if ups.output_watts is None and ups.load_percent is not None and ups.rated_watts:
        ups = dataclasses.replace(ups, derived_watts=round(ups.load_percent * ups.rated_watts / 100, 1))
        notes.append(f"UPS output {ups.derived_watts:g} W derived from {ups.load_percent:g}% load of its "
                     f"{ups.rated_watts:g} W rating: an estimate, not metered")
    return ups
