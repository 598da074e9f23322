"""The session helper's view from inside a macOS user session: its idle time and whether it is locked.

The WindowServer lists every GUI session in the I/O Registry root's ``IOConsoleUsers``: the user's
uid, whether the session is the one on the console (fast user switching puts the others in the
background) and, while the screen is locked, ``CGSSessionScreenIsLocked``. HIDIdleTime counts input
from every keyboard and mouse, so it is this session's idle only while this session is on the
console; a session switched to the background is reported as locked, its input time as it stood.

Imported by the helper only (and by the macOS backend for the ioreg text parsers): stdlib only, small.
"""

from __future__ import annotations

import os
import plistlib
import re

from agent.platform import command, posix_channel

DEFAULT_ADDRESS = "/var/run/caretaker-agent/session.sock"
IOREG_PROPERTY = re.compile(r'^[\s|]*"([^"]+)" = (.*)$')

connect = posix_channel.connect


def parse_ioreg(text: str) -> dict[str, str]:
    """Top-level properties of the first object in ``ioreg -r`` output, values as ioreg printed them.

    Nested dictionaries and arrays stay on their key's line, so only top-level keys are matched.
    """
    properties: dict[str, str] = {}
    for line in text.splitlines():
        match = IOREG_PROPERTY.match(line)
        if match:
            properties.setdefault(match.group(1), match.group(2).strip())
    return properties


def ioreg_int(value: str | None) -> int | None:
    """An integer property; ioreg prints negative 64-bit values as their unsigned form."""
    try:
        number = int(value) if value is not None else None
    except ValueError:
        return None
    return number - 2**64 if number is not None and number >= 2**63 else number


def parse_hid_idle(text: str) -> float | None:
    """Seconds since input from ``ioreg -r -d 1 -c IOHIDSystem`` (HIDIdleTime is in nanoseconds)."""
    idle = ioreg_int(parse_ioreg(text).get("HIDIdleTime"))
    return idle / 1e9 if idle is not None and idle >= 0 else None


def parse_console_users(data: bytes, uid: int) -> tuple[bool, bool] | None:
    """(on the console, locked) for ``uid``'s GUI session, from ``ioreg -a -d 1 -n Root``; None without one."""
    try:
        root = plistlib.loads(data)
    except Exception:  # plistlib raises ExpatError, ValueError or InvalidFileException on a garbled answer
        return None
    for entry in (root.get("IOConsoleUsers") or []) if isinstance(root, dict) else []:
        if isinstance(entry, dict) and entry.get("kCGSSessionUserIDKey") == uid:
            return bool(entry.get("kCGSSessionOnConsoleKey")), bool(entry.get("CGSSessionScreenIsLocked"))
    return None


_last_on_console: list[float | None] = [None]  # the idle time when this session last left the console


def read_state() -> tuple[float | None, bool]:
    """(idle seconds, locked) of this user's GUI session; idle None when it cannot be told."""
    console = command.run(["ioreg", "-a", "-d", "1", "-n", "Root"], timeout=5)
    session = parse_console_users(console.encode() if console else b"", os.getuid())
    idle = parse_hid_idle(command.run(["ioreg", "-r", "-d", "1", "-c", "IOHIDSystem"], timeout=5) or "")
    if session is None or idle is None:
        return None, False
    on_console, locked = session
    if on_console:
        _last_on_console[0] = idle
        return idle, locked
    # In the background: nobody can be using it, and the console's input is someone else's.
    return _last_on_console[0], True


def applescript_text(text: str) -> str:
    """An AppleScript string literal: backslashes and double quotes escaped, so a message cannot break out."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def native_dialog(title: str, message: str, seconds: int, postpone_label: str) -> bool | None:
    """``display dialog`` through osascript, which the helper may use as it runs in the user's session."""
    buttons = ", ".join(applescript_text(label) for label in (postpone_label, "OK") if label)
    script = (f"display dialog {applescript_text(message)} with title {applescript_text(title)} "
              f'buttons {{{buttons}}} default button "OK" giving up after {max(1, seconds)}')
    output = command.run(["osascript", "-e", script], timeout=seconds + 10)
    if output is None:
        return None
    return bool(postpone_label) and f"button returned:{postpone_label}," in output and "gave up:true" not in output
