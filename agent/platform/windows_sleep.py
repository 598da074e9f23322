"""Windows: power requests (``powercfg /requests``, administrator only), the sleep timer (``powercfg /query``'s
STANDBYIDLE), and Windows Update (the servicing stack installing; the RebootRequired / RebootPending keys)."""

from __future__ import annotations

import re
from pathlib import Path

from agent.platform.command import run
from agent.platform.sleep import first_of, running_processes
from agent.protocol import HolderKind, Insomnia, SleepHolder, UpdateStatus

# PERFBOOST and ACTIVELOCKSCREEN keep nothing awake out of hours.
_KINDS = {"DISPLAY": HolderKind.DISPLAY, "SYSTEM": HolderKind.SYSTEM, "AWAYMODE": HolderKind.AWAY_MODE,
          "EXECUTION": HolderKind.EXECUTION}
_SECTION = re.compile(r"^([A-Z]+):\s*$")
_CALLER = re.compile(r"^\[(PROCESS|SERVICE|DRIVER)\]\s+(.*)$")
INSTALLERS = ("TiWorker.exe", "wusa.exe")  # the Windows Modules Installer worker; the standalone update installer
REBOOT_KEYS = (r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired",
               r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending")


def _program(caller: str) -> str:
    """"\\Device\\HarddiskVolume3\\...\\msedge.exe" -> "msedge.exe"; a service's "(wuauserv)" is kept."""
    service = re.search(r"\(([^()]+)\)\s*$", caller)
    path = caller[:service.start()].strip() if service else caller
    name = path.replace("/", "\\").rsplit("\\", 1)[-1]
    return f"{name} ({service.group(1)})" if service else name


def parse_powercfg_requests(text: str) -> tuple[SleepHolder, ...]:
    """Each request under DISPLAY, SYSTEM, AWAYMODE and EXECUTION: "[PROCESS] path" (or SERVICE, DRIVER),
    then the reason the caller gave, if any, on the next line."""
    holders: list[SleepHolder] = []
    kind: HolderKind | None = None
    caller: tuple[str, str] | None = None

    def close(reason: str = "") -> None:
        nonlocal caller
        if caller is not None and kind is not None:
            source, name = caller
            program = _program(name) if source != "DRIVER" else ""
            holders.append(SleepHolder(kind=kind, what=(reason or (program or name))[:255], process=program[:255]))
        caller = None

    for raw in text.splitlines():
        line = raw.strip()
        section = _SECTION.match(line)
        if section:
            close()
            kind = _KINDS.get(section.group(1))
            continue
        found = _CALLER.match(line)
        if found:
            close()
            caller = (found.group(1), found.group(2).strip())
        elif line and line != "None." and caller is not None:
            close(line)
    close()
    return tuple(holders)


def parse_standby_timeout(text: str) -> int | None:
    """Seconds before sleep on mains power from ``powercfg /query SCHEME_CURRENT SUB_SLEEP STANDBYIDLE`` (0: never)."""
    match = re.search(r"Current AC Power Setting Index:\s*0x([0-9a-fA-F]+)", text)
    return int(match.group(1), 16) if match else None


def parse_reg_query(text: str | None) -> bool:
    """Whether ``reg query KEY`` found the key (it prints the key's path and exits 0; else it fails)."""
    return bool(text and "HKEY_LOCAL_MACHINE" in text)


def insomnia(root: Path) -> Insomnia:
    requests = run(["powercfg", "/requests"], timeout=10)
    timeout = run(["powercfg", "/query", "SCHEME_CURRENT", "SUB_SLEEP", "STANDBYIDLE"], timeout=10)
    seconds = parse_standby_timeout(timeout or "")
    return Insomnia(holders=parse_powercfg_requests(requests or ""),
                    sleep_timer_set=None if seconds is None else seconds > 0,
                    detail="" if requests is not None else "powercfg /requests needs administrator rights")


def updates(root: Path) -> UpdateStatus:
    pending = [key.rsplit("\\", 1)[-1] for key in REBOOT_KEYS
               if parse_reg_query(run(["reg", "query", key], timeout=10))]
    installing = first_of(running_processes(), INSTALLERS)
    detail = "; ".join([*([installing] if installing else []), *(f"{key} key present" for key in pending)])
    return UpdateStatus(installing=installing is not None, reboot_pending=bool(pending), detail=detail[:255])
