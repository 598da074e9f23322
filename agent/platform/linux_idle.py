"""How long since someone touched this Linux machine: logind, else X11, else terminal access times.

logind is authoritative where it runs: desktops (GNOME, and logind itself for text consoles) set a
session's IdleHint once their own idle delay has passed. A session whose desktop never sets the
hint always looks busy; that errs towards not powering down someone's machine, which is the safe
side. X11 (the XScreenSaver extension) covers machines without logind when the agent runs inside
the user's display; failing both, a terminal's access time moves with every key typed in it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import psutil

from agent.platform import command
from agent.platform.base import InputIdle

LOGIND_PROPERTIES = ("Id", "Class", "IdleHint", "IdleSinceHintMonotonic")


def parse_session_ids(text: str) -> tuple[str, ...]:
    """Session ids from ``loginctl list-sessions --no-legend`` (the first column, whatever the version)."""
    return tuple(line.split()[0] for line in text.splitlines() if line.strip())


def parse_show_session(text: str) -> list[dict[str, str]]:
    """``loginctl show-session -p … ID…`` output: one block of Key=Value lines per session."""
    sessions: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if current:
                sessions.append(current)
            current = {}
            continue
        key, _, value = line.partition("=")
        current[key.strip()] = value.strip()
    return sessions


def logind_idle_seconds(sessions: Iterable[Mapping[str, str]], now_monotonic_us: int) -> float | None:
    """Idle seconds of the least idle user session; None when no user session can say.

    A session with IdleHint=no is in use now. ``IdleSinceHintMonotonic`` is CLOCK_MONOTONIC in µs,
    immune to wall-clock changes; 0 means logind never recorded when idling began.
    """
    idle: list[float] = []
    for session in sessions:
        if not session.get("Class", "").startswith("user"):
            continue  # greeters and background sessions have no person behind them
        if session.get("IdleHint") == "no":
            idle.append(0.0)
            continue
        since = int(session.get("IdleSinceHintMonotonic") or 0)
        if since > 0:
            idle.append(max(0.0, (now_monotonic_us - since) / 1e6))
    return min(idle) if idle else None


def logind_idle() -> InputIdle | None:
    """None when logind is not running here; otherwise its answer, even "nobody is signed in"."""
    listing = command.run(["loginctl", "list-sessions", "--no-legend"])
    if listing is None:
        return None
    ids = parse_session_ids(listing)
    if not ids:
        return InputIdle(None, "logind")
    properties = [arg for name in LOGIND_PROPERTIES for arg in ("-p", name)]
    shown = command.run(["loginctl", "show-session", *properties, *ids])
    if shown is None:
        return None
    now_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return InputIdle(logind_idle_seconds(parse_show_session(shown), now_us), "logind")


def x11_idle_seconds() -> float | None:
    """Milliseconds since input from the X server named by DISPLAY, as seconds; None without one.

    The extension is checked before querying: an X error would run Xlib's default handler, which
    exits the process. ctypes is loaded only when there is a display to ask: a system service has
    none, and loading it (and searching for the libraries) costs the agent about 1 MiB for nothing.
    """
    if not os.environ.get("DISPLAY"):
        return None
    import ctypes
    import ctypes.util

    class _XScreenSaverInfo(ctypes.Structure):
        _fields_ = [("window", ctypes.c_ulong), ("state", ctypes.c_int), ("kind", ctypes.c_int),
                    ("til_or_since", ctypes.c_ulong), ("idle", ctypes.c_ulong), ("event_mask", ctypes.c_ulong)]

    x11_path, xss_path = ctypes.util.find_library("X11"), ctypes.util.find_library("Xss")
    if not (x11_path and xss_path):
        return None
    x11, xss = ctypes.CDLL(x11_path), ctypes.CDLL(xss_path)
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    x11.XDefaultRootWindow.restype = ctypes.c_ulong
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    x11.XFree.argtypes = [ctypes.c_void_p]
    xss.XScreenSaverQueryExtension.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int),
                                               ctypes.POINTER(ctypes.c_int)]
    xss.XScreenSaverAllocInfo.restype = ctypes.POINTER(_XScreenSaverInfo)
    xss.XScreenSaverQueryInfo.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(_XScreenSaverInfo)]
    display = x11.XOpenDisplay(None)
    if not display:
        return None
    try:
        event_base, error_base = ctypes.c_int(), ctypes.c_int()
        if not xss.XScreenSaverQueryExtension(display, ctypes.byref(event_base), ctypes.byref(error_base)):
            return None
        info = xss.XScreenSaverAllocInfo()
        if not info:
            return None
        try:
            if not xss.XScreenSaverQueryInfo(display, x11.XDefaultRootWindow(display), info):
                return None
            return info.contents.idle / 1000
        finally:
            x11.XFree(info)
    finally:
        x11.XCloseDisplay(display)


def tty_idle_seconds(root: Path, terminals: Sequence[str], now: float) -> float | None:
    """Seconds since the most recently used of ``terminals`` (names under /dev) was read from."""
    idle = []
    for terminal in terminals:
        try:
            accessed = (root / "dev" / terminal).stat().st_atime
        except (OSError, ValueError):
            continue  # ":0" and other display names are not devices
        idle.append(max(0.0, now - accessed))
    return min(idle) if idle else None


def input_idle(root: Path) -> InputIdle:
    answer = logind_idle()
    if answer is not None:
        return answer
    seconds = x11_idle_seconds()
    if seconds is not None:
        return InputIdle(seconds, "x11")
    terminals = [user.terminal for user in psutil.users() if user.terminal]
    seconds = tty_idle_seconds(root, terminals, time.time())
    return InputIdle(seconds, "tty") if seconds is not None else InputIdle()
