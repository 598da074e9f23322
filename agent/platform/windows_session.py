"""The session helper's view from inside a Windows session: its idle time and whether it is locked.

GetLastInputInfo answers for the session of the process that calls it, which is why the helper, and
never the service in session 0, calls it. The screen is locked when the desktop receiving input is
not the user's ("Default") but Winlogon's: OpenInputDesktop is refused to the user then, or names
another desktop.

Imported by the helper only: ctypes and the pipe's client end, nothing from the agent's collectors.
"""

from __future__ import annotations

from agent.platform import windows_channel

DEFAULT_ADDRESS = windows_channel.DEFAULT_ADDRESS
USER_DESKTOP = "Default"
DESKTOP_READOBJECTS = 0x0001
UOI_NAME = 2


def ticks_between(earlier: int, later: int) -> int:
    """Milliseconds between two 32-bit GetTickCount values; the counter wraps every 49.7 days."""
    return (later - earlier) % 2**32


def locked_by_input_desktop(name: str | None) -> bool:
    """Whether the session is locked, from the input desktop's name (None: the user may not open it)."""
    return name != USER_DESKTOP


def connect(address: str) -> windows_channel.PipeConnection:
    return windows_channel.connect(windows_channel.Win32Pipes(), address)


def _input_desktop_name() -> str | None:
    import ctypes

    user32 = ctypes.windll.user32  # type: ignore[attr-defined]
    user32.OpenInputDesktop.restype = ctypes.c_void_p
    desktop = user32.OpenInputDesktop(0, False, DESKTOP_READOBJECTS)
    if not desktop:
        return None
    try:
        name = ctypes.create_unicode_buffer(256)
        needed = ctypes.c_ulong()
        if not user32.GetUserObjectInformationW(ctypes.c_void_p(desktop), UOI_NAME, name, ctypes.sizeof(name),
                                                ctypes.byref(needed)):
            return None
        return name.value
    finally:
        user32.CloseDesktop(ctypes.c_void_p(desktop))


def read_state() -> tuple[float | None, bool]:
    import ctypes

    class LastInputInfo(ctypes.Structure):
        _fields_ = [("cbSize", ctypes.c_uint32), ("dwTime", ctypes.c_uint32)]

    windll = ctypes.windll  # type: ignore[attr-defined]
    info = LastInputInfo(ctypes.sizeof(LastInputInfo), 0)
    locked = locked_by_input_desktop(_input_desktop_name())
    if not windll.user32.GetLastInputInfo(ctypes.byref(info)):
        return None, locked
    windll.kernel32.GetTickCount.restype = ctypes.c_uint32
    return ticks_between(info.dwTime, windll.kernel32.GetTickCount()) / 1000, locked


MB_OK, MB_YESNO, MB_ICONWARNING = 0x0, 0x4, 0x30
MB_SETFOREGROUND, MB_TOPMOST = 0x10000, 0x40000
IDYES = 6


def native_dialog(title: str, message: str, seconds: int, postpone_label: str) -> bool | None:
    """A message box that closes itself when the countdown ends (user32's MessageBoxTimeoutW); with a
    postponement left, Yes postpones."""
    import ctypes

    user32 = ctypes.windll.user32  # type: ignore[attr-defined]
    text = message + (f"\n\n{postpone_label}?" if postpone_label else "")
    style = (MB_YESNO if postpone_label else MB_OK) | MB_ICONWARNING | MB_SETFOREGROUND | MB_TOPMOST
    answer = user32.MessageBoxTimeoutW(None, text, title, style, 0, max(1, seconds) * 1000)
    if answer == 0:
        return None
    return bool(postpone_label) and answer == IDYES
