"""The machine's draw from its battery, which measures the whole system while it discharges."""

from __future__ import annotations

from pathlib import Path

from agent import platform
from agent.platform.base import BatteryDraw

PROVIDES = BatteryDraw


def supported(root: Path) -> bool:
    return platform.current().has_battery(root)


def collect(root: Path) -> BatteryDraw:
    return platform.current().battery_draw(root) or BatteryDraw(discharging=False, detail="battery gone")
