"""Linux: is a wired NIC armed for wake? The kernel's per-device wakeup switch and the NIC's own
Wake-on setting (``ethtool``) must both allow it; either one off and a magic packet is ignored.
Fast Startup and Modern Standby are Windows notions, so they stay unknown here."""

from __future__ import annotations

import re
from pathlib import Path

from agent.platform.command import run
from agent.protocol import WakeReadiness

_WAKE_ON = re.compile(r"^\s*Wake-on:\s*(\S+)\s*$", re.MULTILINE)


def parse_ethtool_wake_on(text: str) -> str | None:
    """The current ``Wake-on`` letters from ``ethtool IFACE`` ("g": magic packet, "d": disabled)."""
    match = _WAKE_ON.search(text)
    return match.group(1) if match else None


def parse_sysfs_wakeup(text: str) -> bool | None:
    """``/sys/class/net/IF/device/power/wakeup``: "enabled" or "disabled"."""
    value = text.strip()
    return {"enabled": True, "disabled": False}.get(value)


def nic_armed(wakeup: bool | None, wake_on: str | None) -> bool | None:
    """Armed only when neither switch is known to be off; unknown when neither is known."""
    if wakeup is False or (wake_on is not None and "g" not in wake_on):
        return False
    if wakeup is None and wake_on is None:
        return None
    return True


def wired_nics(root: Path) -> list[Path]:
    """Physical (backed by a device) and not wireless: magic packets are a wired-LAN feature."""
    base = root / "sys/class/net"
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if (p / "device").exists() and not (p / "wireless").exists())


def wake_readiness(root: Path) -> WakeReadiness:
    verdicts = []
    details = []
    for nic in wired_nics(root):
        try:
            wakeup = parse_sysfs_wakeup((nic / "device/power/wakeup").read_text(encoding="ascii"))
        except OSError:
            wakeup = None
        ethtool = run(["ethtool", nic.name], timeout=5.0) if root == Path("/") else None
        wake_on = parse_ethtool_wake_on(ethtool) if ethtool else None
        verdict = nic_armed(wakeup, wake_on)
        verdicts.append(verdict)
        details.append(f"{nic.name}: wakeup {_word(wakeup)}, Wake-on {wake_on or '?'}")
    known = [v for v in verdicts if v is not None]
    return WakeReadiness(nic_armed=any(known) if known else None, detail="; ".join(details)[:255])


def _word(value: bool | None) -> str:
    return "?" if value is None else ("enabled" if value else "disabled")
