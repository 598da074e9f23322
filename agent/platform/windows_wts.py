"""Who is signed in on Windows, from Terminal Services: every session with a user, console and
Remote Desktop alike (WTSEnumerateSessionsW, then WTSQuerySessionInformationW for its user name).

Session 0 is where services run and is never a person's. A disconnected session (the user switched
away, or their Remote Desktop client went) is still signed in: its helper keeps reporting, and its
idle time keeps growing. The calls go through :class:`WtsApi`, so the rule is tested with a fake.
"""

from __future__ import annotations

import enum
from typing import Protocol

from agent.session.view import SignedIn


class SessionState(enum.IntEnum):
    """WTS_CONNECTSTATE_CLASS."""

    ACTIVE = 0
    CONNECTED = 1
    CONNECT_QUERY = 2
    SHADOW = 3
    DISCONNECTED = 4
    IDLE = 5
    LISTEN = 6
    RESET = 7
    DOWN = 8
    INIT = 9


SIGNED_IN_STATES = frozenset({SessionState.ACTIVE, SessionState.CONNECTED, SessionState.DISCONNECTED})
SERVICES_SESSION = 0


class WtsApi(Protocol):
    def sessions(self) -> list[tuple[int, int]]:
        """(session id, WTS_CONNECTSTATE_CLASS) of every session."""
        ...

    def user(self, session: int) -> str:
        """The user signed in to ``session``; "" for none (the sign-in screen, a listener)."""
        ...


def signed_in_sessions(api: WtsApi) -> tuple[SignedIn, ...]:
    found = []
    for session, state in api.sessions():
        if session == SERVICES_SESSION or state not in SIGNED_IN_STATES:
            continue
        user = api.user(session)
        if user:
            found.append(SignedIn(user=user, session=str(session)))
    return tuple(found)


class Win32Wts:
    """WtsApi through wtsapi32 (ctypes); Windows only."""

    WTS_USER_NAME = 5  # WTS_INFO_CLASS.WTSUserName

    def __init__(self) -> None:
        import ctypes
        from ctypes import wintypes

        class SessionInfo(ctypes.Structure):
            _fields_ = [("SessionId", wintypes.DWORD), ("pWinStationName", wintypes.LPWSTR),
                        ("State", ctypes.c_int)]

        self._ctypes, self._wintypes, self._info = ctypes, wintypes, SessionInfo
        self._wtsapi32 = ctypes.windll.wtsapi32  # type: ignore[attr-defined]

    def sessions(self) -> list[tuple[int, int]]:
        ctypes, wintypes = self._ctypes, self._wintypes
        pointer, count = ctypes.POINTER(self._info)(), wintypes.DWORD()
        if not self._wtsapi32.WTSEnumerateSessionsW(None, 0, 1, ctypes.byref(pointer), ctypes.byref(count)):
            raise ctypes.WinError()
        try:
            return [(pointer[i].SessionId, pointer[i].State) for i in range(count.value)]
        finally:
            self._wtsapi32.WTSFreeMemory(pointer)

    def user(self, session: int) -> str:
        ctypes, wintypes = self._ctypes, self._wintypes
        buffer, size = wintypes.LPWSTR(), wintypes.DWORD()
        if not self._wtsapi32.WTSQuerySessionInformationW(None, session, self.WTS_USER_NAME, ctypes.byref(buffer),
                                                          ctypes.byref(size)):
            return ""
        try:
            return buffer.value or ""
        finally:
            self._wtsapi32.WTSFreeMemory(buffer)
