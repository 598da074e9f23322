"""Host facts, read when they may have changed rather than with every report.

What the machine is (its firmware identity, disks, monitors, batteries' capacity) changes rarely, and
on Windows reading it costs a PowerShell start with a dozen CIM queries, on macOS system_profiler,
diskutil and ioreg. So the facts are read at start, then again when an hour has passed, or sooner when
a cheap signal says the machine changed: another boot time, NIC set or hostname.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from pathlib import Path

from agent.platform.base import HostFacts

REFRESH_SECONDS = 3600.0


class FactsCache:
    def __init__(self, read: Callable[[Path], HostFacts], clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._clock = clock
        self._kept: dict[Path, tuple[Hashable, float, HostFacts]] = {}

    def get(self, root: Path, signal: Hashable) -> HostFacts:
        """The facts for ``root``, read again if ``signal`` differs from last time or an hour has passed."""
        kept = self._kept.get(root)
        now = self._clock()
        if kept is not None and kept[0] == signal and now - kept[1] < REFRESH_SECONDS:
            return kept[2]
        facts = self._read(root)
        self._kept[root] = (signal, now, facts)
        return facts


def _read(root: Path) -> HostFacts:
    from agent import platform

    return platform.current().host_facts(root)


HOST_FACTS = FactsCache(_read)


def host_facts(root: Path, signal: Hashable) -> HostFacts:
    return HOST_FACTS.get(root, signal)
