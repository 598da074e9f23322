"""What every OS's sleep-and-updates module provides, and the one choice of module by OS.

Each of linux_sleep.py, windows_sleep.py and macos_sleep.py has pure ``parse_*`` functions over the
text its tools print (tested table-driven on fixtures in tests/fixtures/insomnia/) and two readings
that run the tools: ``insomnia(root)`` (what holds the machine awake, and whether the OS would sleep
on its own at all) and ``updates(root)`` (whether OS updates are installing or wait for a restart).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Protocol

from agent.platform import module_for
from agent.protocol import Insomnia, UpdateStatus


class SleepChecks(Protocol):
    def insomnia(self, root: Path) -> Insomnia: ...

    def updates(self, root: Path) -> UpdateStatus: ...


def for_platform(platform: str = sys.platform) -> SleepChecks | None:
    """The module for ``platform`` (a ``sys.platform`` value); None where the agent has none."""
    return module_for("sleep", platform)  # type: ignore[return-value]


def first_of(processes: dict[str, int], names: tuple[str, ...]) -> str | None:
    """"name (pid N)" for the first of ``names`` found among running ``processes`` (name -> pid), case-insensitively."""
    folded = {name.casefold(): (name, pid) for name, pid in processes.items()}
    for wanted in names:
        found = folded.get(wanted.casefold())
        if found is not None:
            return f"{found[0]} running (pid {found[1]})"
    return None


def running_processes() -> dict[str, int]:
    """Process name -> a pid, for the few names the update checks look for."""
    import psutil

    return {p.info["name"]: p.info["pid"] for p in psutil.process_iter(["name", "pid"]) if p.info["name"]}
