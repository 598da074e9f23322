"""The metered loads in one poll: the device's total and each outlet or PoE port, in one compact form.

The same form is stored with every reading (``SnmpReading.loads``) and read back for metering, so a
meter-map feed is found the same way in a fresh poll and in last week's history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from controller.snmp.readings import DevicePoll, EnergyCounter

DEVICE = "device"


@dataclass(frozen=True)
class Load:
    watts: float | None = None
    energy: EnergyCounter | None = None
    name: str | None = None


def outlet_key(index: str) -> str:
    return f"outlet:{index}"


def port_key(index: str) -> str:
    return f"port:{index}"


def poll_loads(poll: DevicePoll) -> dict[str, Load]:
    """Every load the poll measured. The device total is what flows through it: a PDU's or UPS's
    output, or the power a switch delivers over PoE."""
    loads: dict[str, Load] = {}
    if poll.power is not None and poll.power.watts is not None:
        loads[DEVICE] = Load(poll.power.watts, poll.power.energy)
    elif poll.ups is not None and poll.ups.output_watts is not None:
        loads[DEVICE] = Load(poll.ups.output_watts)
    elif poll.poe is not None and poll.poe.consumption_watts is not None:
        loads[DEVICE] = Load(poll.poe.consumption_watts)
    for outlet in poll.outlets:
        loads[outlet_key(outlet.index)] = Load(outlet.watts, outlet.energy, outlet.name)
    for port in poll.poe.ports if poll.poe else ():
        loads[port_key(port.index)] = Load(port.watts, None, port.name)
    return loads


def find(loads: Mapping[str, Load], outlet: str | None = None, port: str | None = None) -> str | None:
    """The key of a feed's load: an outlet by index or else by name, a port by index, or the device total."""
    if outlet is not None:
        if outlet_key(outlet) in loads:
            return outlet_key(outlet)
        return next((k for k, v in loads.items() if k.startswith("outlet:") and v.name == outlet), None)
    if port is not None:
        return port_key(port) if port_key(port) in loads else None
    return DEVICE if DEVICE in loads else None


def to_json(loads: Mapping[str, Load]) -> dict[str, dict]:
    return {key: {k: v for k, v in (("w", load.watts), ("name", load.name)) if v is not None}
            | (_energy_json(load.energy) if load.energy else {}) for key, load in loads.items()}


def from_json(data: Mapping[str, Mapping]) -> dict[str, Load]:
    return {key: Load(value.get("w"), _energy(value), value.get("name")) for key, value in data.items()}


def _energy_json(counter: EnergyCounter) -> dict:
    return {"j": counter.joules, "wrap": counter.wraps_at_joules, "since": counter.since,
            "step": counter.resolution_joules}


def _energy(value: Mapping) -> EnergyCounter | None:
    if value.get("j") is None:
        return None
    return EnergyCounter(value["j"], value.get("wrap"), value.get("since"), value.get("step"))
