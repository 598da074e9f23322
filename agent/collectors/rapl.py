"""CPU package and DRAM energy from Intel/AMD RAPL counters, and the arithmetic of their wraparound."""

from __future__ import annotations

from pathlib import Path

from agent import platform
from agent.platform.base import RaplCounter, RaplReading

PROVIDES = RaplReading


def energy_between(previous: RaplCounter, current: RaplCounter) -> int:
    """Microjoules counted from ``previous`` to ``current``, across one wrap of the counter.

    The counter runs from 0 to ``max_energy_range_uj`` and starts again; a smaller current value
    means it wrapped (tools that drop such samples lose energy). More than one wrap in an interval
    cannot be seen: at 100 W a typical 262 kJ range takes 40 minutes to wrap once.
    """
    if current.energy_uj >= previous.energy_uj:
        return current.energy_uj - previous.energy_uj
    return previous.max_energy_range_uj - previous.energy_uj + current.energy_uj


def supported(root: Path) -> bool:
    return platform.current().has_rapl(root)  # without reading the counters: collect reads them, once


def collect(root: Path) -> RaplReading:
    return platform.current().rapl(root) or RaplReading(status="unavailable: no RAPL")
