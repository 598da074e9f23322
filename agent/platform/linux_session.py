"""The session helper's view from inside a Linux desktop session: its idle time and whether it is locked.

logind first: the desktop (GNOME, KDE, and logind itself for text sessions) sets its session's
IdleHint once its own idle delay has passed, and LockedHint while the screen is locked; the helper
finds its session through ``XDG_SESSION_ID``. Without logind, the X server's screen-saver extension
gives the idle time of the display named by ``DISPLAY`` (an X11 session; under Wayland that is only
XWayland's, so logind must answer there), and the lock state cannot be told, so it is reported as
unlocked, which never makes the machine look idler than it is.

Imported by the helper only: no psutil, nothing from the agent's collectors.
"""

from __future__ import annotations

import os
import time

from agent.platform import command, posix_channel

DEFAULT_ADDRESS = "/run/caretaker-agent/session.sock"
SESSION_PROPERTIES = ("IdleHint", "IdleSinceHintMonotonic", "LockedHint")

connect = posix_channel.connect


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


def logind_state(properties: dict[str, str], now_monotonic_us: int) -> tuple[float | None, bool]:
    """(idle seconds, locked) from one session's properties; idle None when logind cannot say since when."""
    locked = properties.get("LockedHint") == "yes"
    if properties.get("IdleHint") == "no":
        return 0.0, locked
    since = int(properties.get("IdleSinceHintMonotonic") or 0)
    return (max(0.0, (now_monotonic_us - since) / 1e6) if since > 0 else None), locked


_xlib: list = []  # (ctypes, libX11, libXss, info struct) once loaded: found and loaded once per helper


def _load_xlib() -> tuple | None:
    if _xlib:
        return _xlib[0]
    import ctypes
    import ctypes.util

    class XScreenSaverInfo(ctypes.Structure):
        _fields_ = [("window", ctypes.c_ulong), ("state", ctypes.c_int), ("kind", ctypes.c_int),
                    ("til_or_since", ctypes.c_ulong), ("idle", ctypes.c_ulong), ("event_mask", ctypes.c_ulong)]

    x11_path, xss_path = ctypes.util.find_library("X11"), ctypes.util.find_library("Xss")
    if not (x11_path and xss_path):
        _xlib.append(None)
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
    xss.XScreenSaverAllocInfo.restype = ctypes.POINTER(XScreenSaverInfo)
    xss.XScreenSaverQueryInfo.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(XScreenSaverInfo)]
    _xlib.append((ctypes, x11, xss))
    return _xlib[0]


def x11_idle_seconds() -> float | None:
    """Milliseconds since input from the X server named by DISPLAY, as seconds; None without one.

    The extension is checked before querying: an X error would run Xlib's default handler, which
    exits the process. ctypes and the libraries are loaded only when there is a display to ask.
    """
    if not os.environ.get("DISPLAY"):
        return None
    loaded = _load_xlib()
    if loaded is None:
        return None
    ctypes, x11, xss = loaded
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


def read_state() -> tuple[float | None, bool]:
    """(idle seconds, locked) of the session this process runs in; idle None when nothing here can tell."""
    session = os.environ.get("XDG_SESSION_ID")
    if session:
        properties = [arg for name in SESSION_PROPERTIES for arg in ("-p", name)]
        shown = command.run(["loginctl", "show-session", *properties, session], timeout=5)
        parsed = parse_show_session(shown or "")
        if parsed:
            idle, locked = logind_state(parsed[0], time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)
            if idle is not None:
                return idle, locked
    return x11_idle_seconds(), False


def native_dialog(title: str, message: str, seconds: int, postpone_label: str) -> bool | None:
    """A desktop notification with a Postpone action (libnotify's notify-send 0.7.10 or later prints the
    chosen action's name); None when there is no notify-send or notification server."""
    argv = ["notify-send", "--urgency=critical", "--app-name=Caretaker", f"--expire-time={seconds * 1000}", "--wait"]
    if postpone_label:
        argv.append(f"--action=postpone={postpone_label}")
    output = command.run([*argv, title, message], timeout=seconds + 5)
    return None if output is None else output.strip() == "postpone"
