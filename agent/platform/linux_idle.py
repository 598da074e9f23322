"""Who is signed in on this Linux machine (utmp), and how long its sign-in screen has been left alone (logind).

A service learns nothing about the input of a signed-in user's session: that comes from the session
helper (``linux_session``). What a service can read is the list of sessions and, while nobody is
signed in, the greeter's idle hint, which GDM and LightDM's greeters set through logind like any
desktop session.

Sessions come from utmp, as ``who`` reads them, under ``root`` so that a test can give the agent a
utmp of its own: login, sshd and display managers add a USER_PROCESS record for each sign-in. A
record with a host that is not an X display (":0") came over the network.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from agent.platform import command
from agent.platform.linux_session import parse_show_session
from agent.session.view import SignedIn, SystemIdle

UTMP_FILES = (Path("run/utmp"), Path("var/run/utmp"))
# glibc's struct utmp on 64-bit Linux (x86-64, arm64): 384 bytes, 32-bit times.
UTMP = struct.Struct("=hxxi32s4s32s256shhi2i4i20s")
USER_PROCESS = 7
LOGIND_PROPERTIES = ("Id", "Class", "IdleHint", "IdleSinceHintMonotonic")
LOGIND_SESSIONS = Path("run/systemd/sessions")


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def parse_utmp(data: bytes) -> tuple[SignedIn, ...]:
    """The signed-in sessions in a utmp file's records (dead and boot records are not sessions)."""
    sessions = []
    for offset in range(0, len(data) - UTMP.size + 1, UTMP.size):
        kind, _pid, line, _id, user, host, _term, _exit, _session, seconds, _micro, *_rest = UTMP.unpack_from(
            data, offset)
        if kind != USER_PROCESS or not _text(user):
            continue
        where = _text(host)
        sessions.append(SignedIn(user=_text(user), session=_text(line) or where or "?",
                                 remote=bool(where) and not where.startswith(":"),
                                 since=datetime.fromtimestamp(seconds, UTC) if seconds > 0 else None))
    return tuple(sessions)


def signed_in(root: Path) -> tuple[SignedIn, ...]:
    for candidate in UTMP_FILES:
        try:
            return parse_utmp((root / candidate).read_bytes())
        except OSError:
            continue
    return ()


def greeter_idle_seconds(sessions: Iterable[Mapping[str, str]], now_monotonic_us: int) -> float | None:
    """Idle seconds of the least idle greeter (sign-in screen) session; None without one that can say.

    A session with IdleHint=no is in use now. ``IdleSinceHintMonotonic`` is CLOCK_MONOTONIC in µs,
    immune to wall-clock changes; 0 means logind never recorded when idling began.
    """
    idle: list[float] = []
    for session in sessions:
        if session.get("Class") != "greeter":
            continue
        if session.get("IdleHint") == "no":
            idle.append(0.0)
            continue
        since = int(session.get("IdleSinceHintMonotonic") or 0)
        if since > 0:
            idle.append(max(0.0, (now_monotonic_us - since) / 1e6))
    return min(idle) if idle else None


def greeter_session_ids(root: Path) -> tuple[str, ...]:
    """The greeter sessions logind keeps state files for (``/run/systemd/sessions/<id>``, CLASS=greeter)."""
    base = root / LOGIND_SESSIONS
    try:
        files = sorted(base.iterdir())
    except OSError:
        return ()
    found = []
    for path in files:
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        if "CLASS=greeter" in lines:
            found.append(path.name)
    return tuple(found)


def system_idle(root: Path) -> SystemIdle:
    """The sign-in screen's idle time from logind; unknown without logind or a graphical greeter.

    logind's own state files say whether a greeter runs, so a machine without one (a server, a text
    console, no systemd) costs no ``loginctl`` at all, and one with a greeter a single call.
    """
    ids = greeter_session_ids(root)
    if not ids:
        return SystemIdle(None, "logind")
    properties = [arg for name in LOGIND_PROPERTIES for arg in ("-p", name)]
    shown = command.run(["loginctl", "show-session", *properties, *ids])
    now_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return SystemIdle(greeter_idle_seconds(parse_show_session(shown or ""), now_us), "logind")
