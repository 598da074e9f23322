"""macOS: "Wake for network access" is ``womp`` in ``pmset -g``; Macs have no Fast Startup, and their
sleep is not Windows' Modern Standby, so those stay unknown."""

from __future__ import annotations

import re
from pathlib import Path

from agent.platform.command import run
from agent.protocol import WakeReadiness

_WOMP = re.compile(r"^\s*womp\s+(\d+)\s*$", re.MULTILINE)


def parse_pmset_womp(text: str) -> bool | None:
    match = _WOMP.search(text)
    return match.group(1) != "0" if match else None


def wake_readiness(root: Path) -> WakeReadiness:
    settings = run(["pmset", "-g"], timeout=10.0)
    return WakeReadiness(nic_armed=parse_pmset_womp(settings) if settings else None)
