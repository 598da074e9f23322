"""Linux power sources: RAPL counters from powercap, batteries from power_supply.

RAPL: each package zone counts the CPU package (its core/uncore subzones sit inside it, so they
are not added again); DRAM is counted beside it because the package excludes memory. ``psys``
(the whole platform) overlaps the package and the MMIO interface duplicates the MSR one, so both
are left out. Since CVE-2020-8694 ``energy_uj`` is root-only: that must show up as a status.

Batteries: sysfs reports energy in µWh, charge in µAh and voltage in µV; a battery whose driver
gives only charge is turned into energy with its design voltage. Peripheral batteries (a wireless
mouse, scope "Device") and UPSes are not the machine's battery.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from agent.platform.base import BatteryDraw, RaplCounter, RaplReading, battery
from agent.platform.sysfs import read, read_int
from agent.protocol import Battery

POWERCAP = Path("sys/class/powercap")
POWER_SUPPLY = Path("sys/class/power_supply")
RAPL_ZONE = re.compile(r"^(intel|amd)-rapl:\d+(:\d+)?$")
DRAW_ATTRIBUTES = ("status", "power_now", "current_now", "voltage_now")


def counted_zone(zone: str, name: str) -> bool:
    """Whether a RAPL zone adds energy no other counted zone already includes."""
    top_level = zone.count(":") == 1
    return (top_level and name.startswith("package")) or name == "dram"


def _counted_zones(root: Path) -> list[tuple[str, str]]:
    base = root / POWERCAP
    if not base.is_dir():
        return []
    zones = [(entry.name, read(entry / "name") or "") for entry in sorted(base.iterdir())
             if RAPL_ZONE.match(entry.name)]
    return [(zone, name) for zone, name in zones if counted_zone(zone, name)]


def has_rapl(root: Path) -> bool:
    return bool(_counted_zones(root))


def rapl(root: Path) -> RaplReading | None:
    base = root / POWERCAP
    counted = _counted_zones(root)
    if not counted:
        return None
    counters = []
    unreadable: list[tuple[str, str]] = []  # (zone description, why)
    for zone, name in counted:
        try:
            energy = int((base / zone / "energy_uj").read_text())
            max_range = int((base / zone / "max_energy_range_uj").read_text())
        except PermissionError:
            unreadable.append((f"{name} ({zone})", "permission"))
            continue
        except (OSError, ValueError):
            unreadable.append((f"{name} ({zone})", "unreadable counter"))
            continue
        if not 0 <= energy <= max_range:
            unreadable.append((f"{name} ({zone})", "counter outside its range"))
            continue
        counters.append(RaplCounter(zone=zone, name=name, energy_uj=energy, max_energy_range_uj=max_range))
    if not counters:  # every zone refused: one status says why (permission wins: it has a fix)
        reasons = {why for _, why in unreadable}
        return RaplReading(status=f"unavailable: {'permission' if 'permission' in reasons else sorted(reasons)[0]}")
    # One unreadable zone costs that zone, named, not the readable ones beside it.
    return RaplReading(counters=tuple(counters), unreadable=tuple(f"{zone}: {why}" for zone, why in unreadable))


def _system_batteries(root: Path) -> list[Path]:
    base = root / POWER_SUPPLY
    if not base.is_dir():
        return []
    return [supply for supply in sorted(base.iterdir())
            if read(supply / "type") == "Battery" and read(supply / "scope") != "Device"]


def capacity_wh(energy_uwh: int | None, charge_uah: int | None, voltage_uv: int | None) -> float | None:
    """Watt-hours from whichever pair the driver offers: energy (µWh), or charge (µAh) × voltage (µV)."""
    if energy_uwh is not None:
        return round(energy_uwh / 1e6, 3)
    if charge_uah is not None and voltage_uv:
        return round(charge_uah * voltage_uv / 1e12, 3)
    return None


def batteries(root: Path) -> tuple[Battery, ...]:
    found = []
    for supply in _system_batteries(root):
        design_voltage = read_int(supply / "voltage_min_design")
        found.append(battery(
            supply.name,
            design_wh=capacity_wh(read_int(supply / "energy_full_design"),
                                  read_int(supply / "charge_full_design"), design_voltage),
            full_wh=capacity_wh(read_int(supply / "energy_full"), read_int(supply / "charge_full"),
                                design_voltage),
        ))
    return tuple(found)


def has_battery(root: Path) -> bool:
    return bool(_system_batteries(root))


def supply_draw(name: str, attributes: Mapping[str, str | None]) -> BatteryDraw:
    """One battery's draw from its sysfs attributes (``status``, ``power_now``, ``current_now``, ``voltage_now``).

    ``power_now`` is preferred; some firmware leaves it at 0 or omits it and gives current and
    voltage instead. Some drivers sign the current negative while discharging, hence ``abs``.
    """
    if attributes.get("status") != "Discharging":
        return BatteryDraw(discharging=False, detail=f"{name} {attributes.get('status') or 'status unknown'}")
    power = _int(attributes.get("power_now"))
    if power:
        return BatteryDraw(discharging=True, watts=abs(power) / 1e6, detail=f"{name} power_now")
    current, voltage = _int(attributes.get("current_now")), _int(attributes.get("voltage_now"))
    if current is not None and voltage:
        return BatteryDraw(discharging=True, watts=abs(current) * voltage / 1e12, detail=f"{name} current×voltage")
    return BatteryDraw(discharging=True, detail=f"{name} reports no rate")


def combined_draw(draws: list[BatteryDraw]) -> BatteryDraw:
    """The system's draw across its batteries: the sum of those discharging (ThinkPads drain one at a time)."""
    discharging = [draw for draw in draws if draw.discharging]
    if not discharging:
        return BatteryDraw(discharging=False, detail=", ".join(draw.detail for draw in draws))
    rates = [draw.watts for draw in discharging]
    watts = None if None in rates else sum(rate for rate in rates if rate is not None)
    return BatteryDraw(discharging=True, watts=watts, detail="+".join(draw.detail for draw in discharging))


def battery_draw(root: Path) -> BatteryDraw | None:
    supplies = _system_batteries(root)
    if not supplies:
        return None
    return combined_draw([supply_draw(supply.name, {a: read(supply / a) for a in DRAW_ATTRIBUTES})
                          for supply in supplies])


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
