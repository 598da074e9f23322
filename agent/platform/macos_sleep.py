"""macOS: power assertions (``pmset -g assertions``), the system sleep timer (``pmset -g``'s "sleep"), and
software updates (an installer running; ``softwareupdate --list`` only says what is available)."""

from __future__ import annotations

import re
from pathlib import Path

from agent.platform.command import run
from agent.platform.sleep import first_of, running_processes
from agent.protocol import HolderKind, Insomnia, SleepHolder, UpdateStatus

_KINDS = {"PreventUserIdleSystemSleep": HolderKind.SYSTEM, "PreventSystemSleep": HolderKind.SYSTEM,
          "NoIdleSleepAssertion": HolderKind.SYSTEM, "PreventUserIdleDisplaySleep": HolderKind.DISPLAY,
          "NoDisplaySleepAssertion": HolderKind.DISPLAY, "NetworkClientActive": HolderKind.NETWORK}
_OWNED = re.compile(r'^\s*pid (\d+)\((.*?)\): \[0x[0-9a-fA-F]+\] [\d:]+ (\w+) named: "(.*)"\s*$')
INSTALLERS = ("softwareupdate", "installer", "InstallAssistant")


def parse_pmset_assertions(text: str) -> tuple[SleepHolder, ...]:
    """The "Listed by owning process" lines whose assertion holds system or display sleep off."""
    holders = []
    for line in text.splitlines():
        match = _OWNED.match(line)
        if match and match.group(3) in _KINDS:
            pid, process, kind, name = match.groups()
            holders.append(SleepHolder(kind=_KINDS[kind], what=name[:255], process=process[:255], pid=int(pid)))
    return tuple(holders)


def parse_pmset_sleep(text: str) -> int | None:
    """Minutes of idle before system sleep from ``pmset -g`` (0: never); None if not listed."""
    match = re.search(r"^\s*sleep\s+(\d+)", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def parse_softwareupdate_list(text: str) -> tuple[int, int]:
    """(updates available, of which need a restart) from ``softwareupdate --list``."""
    labels = len(re.findall(r"^\s*\* Label:", text, re.MULTILINE))
    restart = len(re.findall(r"Action: restart", text, re.IGNORECASE))
    return labels, restart


def insomnia(root: Path) -> Insomnia:
    assertions = run(["pmset", "-g", "assertions"], timeout=10)
    minutes = parse_pmset_sleep(run(["pmset", "-g"], timeout=10) or "")
    return Insomnia(holders=parse_pmset_assertions(assertions or ""),
                    sleep_timer_set=None if minutes is None else minutes > 0,
                    detail="" if assertions is not None else "pmset -g assertions did not answer")


def updates(root: Path) -> UpdateStatus:
    """macOS keeps no "restart pending" flag a service can read: reboot_pending stays unknown."""
    installing = first_of(running_processes(), INSTALLERS)
    return UpdateStatus(installing=installing is not None, reboot_pending=None, detail=installing or "")
