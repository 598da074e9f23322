"""Wake readiness: what would stop this machine waking from a magic packet (Fast Startup, a NIC not
armed, Modern Standby), so the controller can say why a wake failed while the machine is off.

The checks run OS tools, and the answer changes only when someone changes a setting, so a reading
is kept for an hour rather than taken with every report.
"""

from __future__ import annotations

import time
from pathlib import Path

from agent.platform.wake import for_platform
from agent.protocol import WakeReadiness

PROVIDES = WakeReadiness
KEEP_SECONDS = 3600.0
_cache: dict[Path, tuple[float, WakeReadiness]] = {}


def supported(root: Path) -> bool:
    return for_platform() is not None


def collect(root: Path) -> WakeReadiness:
    kept = _cache.get(root)
    if kept is not None and time.monotonic() - kept[0] < KEEP_SECONDS:
        return kept[1]
    checks = for_platform()
    reading = checks.wake_readiness(root) if checks is not None else WakeReadiness()
    _cache[root] = (time.monotonic(), reading)
    return reading
