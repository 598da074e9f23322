"""Whether OS updates are installing or wait for a restart: the enforcer puts a power-down off while they
install (and looks again every tick until they are done), and reports carry the state when it changes.
Read at most every ``KEEP_SECONDS``: a file or two, the process list and, on Windows, two registry keys
(Linux's ``needrestart -b`` keeps its own answer longer)."""

from __future__ import annotations

import time
from pathlib import Path

from agent.platform.sleep import for_platform
from agent.protocol import UpdateStatus

PROVIDES = UpdateStatus
KEEP_SECONDS = 10.0
_cache: dict[Path, tuple[float, UpdateStatus]] = {}


def supported(root: Path) -> bool:
    return for_platform() is not None


def collect(root: Path) -> UpdateStatus:
    kept = _cache.get(root)
    if kept is not None and time.monotonic() - kept[0] < KEEP_SECONDS:
        return kept[1]
    checks = for_platform()
    reading = checks.updates(root) if checks is not None else UpdateStatus()
    _cache[root] = (time.monotonic(), reading)
    return reading
