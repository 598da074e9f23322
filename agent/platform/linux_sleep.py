"""Linux: logind's inhibitors (``systemd-inhibit --list``), whether the system would ever sleep on its own
(sleep targets masked, logind's IdleAction), and OS updates (``/run/reboot-required``, a package manager
running or holding the dpkg lock, ``needrestart -b``)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from pathlib import Path

from agent.platform.command import run
from agent.platform.sleep import first_of, running_processes
from agent.protocol import HolderKind, Insomnia, SleepHolder, UpdateStatus

# logind "what" values that hold the machine awake; shutdown and handle-* locks do not stop idle sleep.
_KINDS = {"sleep": HolderKind.SYSTEM, "idle": HolderKind.IDLE}
_COLUMNS = ("WHO", "UID", "USER", "PID", "COMM", "WHAT", "WHY", "MODE")
SLEEP_ACTIONS = frozenset({"suspend", "hibernate", "hybrid-sleep", "suspend-then-hibernate", "poweroff"})
UPDATERS = ("unattended-upgr", "unattended-upgrade", "apt-get", "apt", "aptitude", "dpkg", "dnf", "yum", "zypper")
DPKG_LOCKS = ("var/lib/dpkg/lock-frontend", "var/lib/dpkg/lock")


def parse_systemd_inhibit(text: str) -> tuple[SleepHolder, ...]:
    """Block-mode sleep and idle inhibitors from ``systemd-inhibit --list`` (columns found from its header)."""
    lines = text.splitlines()
    header = next((i for i, line in enumerate(lines) if line.split()[:2] == ["WHO", "UID"]), None)
    if header is None:
        return ()
    starts = [lines[header].index(name) for name in _COLUMNS]
    holders: list[SleepHolder] = []
    for line in lines[header + 1:]:
        if not line.strip() or re.match(r"^\d+ inhibitors? listed", line.strip()):
            continue
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        who, _uid, _user, pid, comm, what, why, mode = cells
        if mode != "block":
            continue
        for part in what.split(":"):
            kind = _KINDS.get(part)
            if kind is not None:
                holders.append(SleepHolder(kind=kind, what=f"{who}: {why}" if why else who, process=comm,
                                           pid=int(pid) if pid.isdigit() else None))
    return tuple(holders)


def parse_unit_masked(text: str) -> bool:
    """``systemctl show -p LoadState sleep.target suspend.target``: any of them masked."""
    return any(line.strip() == "LoadState=masked" for line in text.splitlines())


def parse_idle_action(texts: Iterable[str]) -> str:
    """logind's IdleAction from logind.conf and its drop-ins, in the order logind reads them (last wins)."""
    action = "ignore"
    for text in texts:
        for line in text.splitlines():
            match = re.match(r"^\s*IdleAction\s*=\s*(\S+)", line)
            if match:
                action = match.group(1)
    return action


def sleep_timer_set(masked: bool | None, idle_action: str) -> bool | None:
    """False when sleep is masked; True when logind sleeps idle machines; otherwise unknown (a desktop's own
    power settings, which a system service cannot read, may still sleep the machine)."""
    if masked:
        return False
    return True if idle_action in SLEEP_ACTIONS else None


def parse_proc_locks(text: str) -> dict[tuple[int, int, int], int]:
    """(major, minor, inode) -> pid of each lock held, from ``/proc/locks``
    ("1: POSIX  ADVISORY  WRITE 812 08:01:1234 0 EOF")."""
    held: dict[tuple[int, int, int], int] = {}
    for line in text.splitlines():
        match = re.search(r"\s(\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s", line)
        if match and "->" not in line:  # "->" marks a waiter, not a holder
            pid, major, minor, inode = match.groups()
            held[(int(major, 16), int(minor, 16), int(inode))] = int(pid)
    return held


def parse_needrestart(text: str) -> bool | None:
    """``needrestart -b``: a kernel upgrade waits for a reboot (NEEDRESTART-KSTA 2 or 3); None if not said."""
    match = re.search(r"^NEEDRESTART-KSTA:\s*(\d)", text, re.MULTILINE)
    return None if match is None else int(match.group(1)) >= 2


def update_status(reboot_required: str | None, lock_holder: str | None, updater: str | None,
                  kernel_pending: bool | None) -> UpdateStatus:
    """The readings put together: ``reboot_required`` is /run/reboot-required.pkgs' text ("" when only the flag)."""
    evidence = [e for e in (updater, lock_holder) if e]
    pending = reboot_required is not None or bool(kernel_pending)
    packages = ", ".join((reboot_required or "").split()[:5])
    detail = "; ".join([*evidence, *(["/run/reboot-required" + (f" ({packages})" if packages else "")]
                                     if reboot_required is not None else []),
                        *(["needrestart: a newer kernel is installed"] if kernel_pending else [])])
    return UpdateStatus(installing=bool(evidence), reboot_pending=pending, detail=detail[:255])


def insomnia(root: Path) -> Insomnia:
    # Wide, or systemd cuts the WHY column short with an ellipsis when its output is not a terminal.
    listed = run(["systemd-inhibit", "--list", "--no-pager"], timeout=5, env={**os.environ, "COLUMNS": "1000"})
    shown = run(["systemctl", "show", "-p", "LoadState", "sleep.target", "suspend.target"], timeout=5)
    confs = [root / "etc/systemd/logind.conf", *sorted((root / "etc/systemd/logind.conf.d").glob("*.conf"))]
    texts = [p.read_text(errors="replace") for p in confs if p.is_file()]
    return Insomnia(holders=parse_systemd_inhibit(listed or ""),
                    sleep_timer_set=sleep_timer_set(None if shown is None else parse_unit_masked(shown),
                                                    parse_idle_action(texts)),
                    detail="" if listed is not None else "systemd-inhibit --list did not answer (no logind?)")


def _lock_holder(root: Path) -> str | None:
    try:
        held = parse_proc_locks((root / "proc/locks").read_text())
    except OSError:
        return None
    for relative in DPKG_LOCKS:
        try:
            st = os.stat(root / relative)
        except OSError:
            continue
        pid = held.get((os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
        if pid is not None:
            return f"/{relative} held (pid {pid})"
    return None


def _reboot_required(root: Path) -> str | None:
    flag = root / "run/reboot-required"
    if not flag.exists():
        return None
    try:
        return (root / "run/reboot-required.pkgs").read_text(errors="replace")
    except OSError:
        return ""


_needrestart: list[tuple[float, str | None]] = []
NEEDRESTART_SECONDS = 3600.0  # it scans every process's mapped files: hourly is plenty for a kernel upgrade


def _kernel_check() -> str | None:
    """``needrestart -b`` as root (it cannot see other users' processes otherwise), kept for an hour."""
    if _needrestart and time.monotonic() - _needrestart[0][0] < NEEDRESTART_SECONDS:
        return _needrestart[0][1]
    answer = run(["needrestart", "-b"], timeout=60) if os.geteuid() == 0 else None
    _needrestart[:] = [(time.monotonic(), answer)]
    return answer


def updates(root: Path) -> UpdateStatus:
    kernel = _kernel_check()
    return update_status(_reboot_required(root), _lock_holder(root), first_of(running_processes(), UPDATERS),
                         parse_needrestart(kernel) if kernel else None)
