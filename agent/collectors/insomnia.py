"""What holds the machine awake (power requests, assertions, inhibitors) and whether it would sleep on its own.

The OS tools cost a process each (and powercfg a good part of a second), and only idle machines raise
the question, so the sampler asks only for an idle interval and a reading is kept for ``KEEP_SECONDS``.
"""

from __future__ import annotations

import time
from pathlib import Path

from agent.platform.sleep import for_platform
from agent.protocol import Insomnia

PROVIDES = Insomnia
KEEP_SECONDS = 600.0
_cache: dict[Path, tuple[float, Insomnia]] = {}


def supported(root: Path) -> bool:
    return for_platform() is not None


def collect(root: Path) -> Insomnia:
    kept = _cache.get(root)
    if kept is not None and time.monotonic() - kept[0] < KEEP_SECONDS:
        return kept[1]
    checks = for_platform()
    reading = checks.insomnia(root) if checks is not None else Insomnia()
    _cache[root] = (time.monotonic(), reading)
    return reading
