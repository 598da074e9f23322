"""What the machine is doing right now, as counters the sampler differences over an interval.

CPU time and time asleep are cumulative so that one reading at each end of an interval gives its
mean, however long the interval; input idle and sessions are instantaneous, and come from the
session desk (agent.session), which the power enforcer asks too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from agent import platform
from agent.session import desk


@dataclass(frozen=True)
class ActivityReading:
    cpu_busy_seconds: float  # summed over all CPUs since boot
    cpu_total_seconds: float
    idle_seconds: float | None  # since the last keyboard or mouse input; None: not knowable here
    idle_source: str
    sessions: int  # signed-in user sessions
    slept_seconds: float  # time suspended since boot: a counter that only moves while asleep
    memory_percent: float | None = None  # physical memory in use now, 0-100


PROVIDES = ActivityReading


def cpu_busy_and_total(times: Any) -> tuple[float, float]:
    """Busy and total CPU seconds from a psutil ``cpu_times()`` tuple, whatever the OS's fields.

    Linux counts guest time inside user time already, and waiting for I/O is not work.
    """
    fields: dict[str, float] = times._asdict()
    total = sum(fields.values()) - fields.get("guest", 0.0) - fields.get("guest_nice", 0.0)
    idle = fields.get("idle", 0.0) + fields.get("iowait", 0.0)
    return total - idle, total


def cpu_percent_between(previous: ActivityReading, current: ActivityReading) -> float:
    """Mean utilisation of all CPUs between two readings, 0-100."""
    total = current.cpu_total_seconds - previous.cpu_total_seconds
    if total <= 0:
        return 0.0
    busy = current.cpu_busy_seconds - previous.cpu_busy_seconds
    return min(100.0, max(0.0, 100.0 * busy / total))


def supported(root: Path) -> bool:
    return True


def collect(root: Path) -> ActivityReading:
    backend = platform.current()
    busy, total = cpu_busy_and_total(psutil.cpu_times())
    sessions = desk.current(root).view()  # the enforcer's own answer: one rule for idle (agent.session.view)
    return ActivityReading(cpu_busy_seconds=busy, cpu_total_seconds=total, idle_seconds=sessions.idle_seconds,
                           idle_source=sessions.source, sessions=sessions.sessions,
                           slept_seconds=backend.slept_seconds(), memory_percent=psutil.virtual_memory().percent)
