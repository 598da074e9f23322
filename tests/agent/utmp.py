"""utmp files written by glibc itself (pututxline, as login and sshd do) into a file of the test's choosing.

The agent parses utmp with its own reader (agent.platform.linux_idle); writing records through the C
library, and reading them back with ``who``, keeps that reader honest about the format.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import time
from pathlib import Path

USER_PROCESS = 7
DEAD_PROCESS = 8


class _Utmp(ctypes.Structure):
    """glibc's struct utmp (bits/utmp.h) on 64-bit Linux."""

    _fields_ = (("ut_type", ctypes.c_short), ("ut_pid", ctypes.c_int), ("ut_line", ctypes.c_char * 32),
                ("ut_id", ctypes.c_char * 4), ("ut_user", ctypes.c_char * 32), ("ut_host", ctypes.c_char * 256),
                ("e_termination", ctypes.c_short), ("e_exit", ctypes.c_short), ("ut_session", ctypes.c_int32),
                ("tv_sec", ctypes.c_int32), ("tv_usec", ctypes.c_int32), ("ut_addr_v6", ctypes.c_int32 * 4),
                ("reserved", ctypes.c_char * 20))


def write_session(path: Path, user: str, line: str, host: str = "", started: float | None = None,
                  kind: int = USER_PROCESS) -> None:
    """Add (or, with ``kind=DEAD_PROCESS``, end) the session on ``line`` in the utmp file at ``path``."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(exist_ok=True)
    if libc.utmpname(str(path).encode()) != 0:
        raise OSError(ctypes.get_errno(), f"utmpname {path}")
    record = _Utmp(ut_type=kind, ut_pid=os.getpid(), ut_line=line.encode(), ut_id=line[-4:].encode(),
                   ut_user=user.encode(), ut_host=host.encode(), tv_sec=int(started or time.time()))
    libc.setutent()
    try:
        libc.pututline.restype = ctypes.c_void_p
        if not libc.pututline(ctypes.byref(record)):
            raise OSError(ctypes.get_errno(), f"pututline {path}")
    finally:
        libc.endutent()
        libc.utmpname(b"/var/run/utmp")
