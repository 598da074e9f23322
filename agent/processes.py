"""Which of a policy's named processes are running: the one question the agent asks of the process list.

A policy keeps machines on while, say, a render or a recording runs (``processes_absent``). The
enforcer and the reports both need the answer, and only for those names: the process list itself
never leaves the machine.
"""

from __future__ import annotations

from collections.abc import Sequence

import psutil


def running(names: Sequence[str]) -> tuple[str, ...]:
    """The ``names`` (as the policy spells them) that match a running process, case-insensitively.

    psutil gives the executable's name ("obs64.exe" on Windows, "blender" on Linux, where it also
    looks past the kernel's 15-character cut of the name).
    """
    if not names:
        return ()
    wanted = {name.casefold() for name in names}
    seen: set[str] = set()
    for process in psutil.process_iter(["name"]):
        name = (process.info["name"] or "").casefold()
        if name in wanted:
            seen.add(name)
    return tuple(name for name in names if name.casefold() in seen)
