"""Windows: the three usual reasons a PC ignores a magic packet.

Fast Startup (``HiberbootEnabled`` = 1) turns "Shut down" into a hibernation many NIC drivers will not
wake from; Modern Standby (S0 low power idle) replaces S3 sleep; and the NIC must be armed for wake
(``powercfg /devicequery wake_armed`` lists the devices that are).
"""

from __future__ import annotations

import re
from pathlib import Path

from agent.platform.command import run
from agent.protocol import WakeReadiness

POWER_KEY = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Power"
_HIBERBOOT = re.compile(r"HiberbootEnabled\s+REG_DWORD\s+0x([0-9a-fA-F]+)")
# Device names of network adapters as Windows lists them; a keyboard or mouse armed for wake is not one.
_NIC_WORDS = re.compile(r"ethernet|network|gigabit|\bgbe\b|\blan\b|\bnic\b|pcie gbe|family controller", re.I)


def parse_hiberboot(text: str) -> bool | None:
    """``reg query <POWER_KEY> /v HiberbootEnabled``."""
    match = _HIBERBOOT.search(text)
    return int(match.group(1), 16) != 0 if match else None


def parse_wake_armed(text: str) -> bool | None:
    """``powercfg /devicequery wake_armed``: one device per line, or "NONE"."""
    devices = [line.strip() for line in text.splitlines() if line.strip()]
    if not devices:
        return None
    return any(_NIC_WORDS.search(device) for device in devices if device.upper() != "NONE")


def parse_sleep_states(text: str) -> bool | None:
    """``powercfg /a``: True when "S0 Low Power Idle" is among the available states (Modern Standby).

    Only the English wording is understood; on other display languages this stays unknown.
    """
    available, _, _unavailable = text.partition("not available")
    if "available" not in available:
        return None
    return "S0 Low Power Idle" in available


def wake_readiness(root: Path) -> WakeReadiness:
    hiberboot = run(["reg", "query", POWER_KEY, "/v", "HiberbootEnabled"], timeout=10.0)
    armed = run(["powercfg", "/devicequery", "wake_armed"], timeout=10.0)
    states = run(["powercfg", "/a"], timeout=10.0)
    return WakeReadiness(fast_startup=parse_hiberboot(hiberboot) if hiberboot else None,
                         modern_standby=parse_sleep_states(states) if states else None,
                         nic_armed=parse_wake_armed(armed) if armed else None)
