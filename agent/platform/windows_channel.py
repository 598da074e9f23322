"""The session channel on Windows: a named pipe that only interactive users may open, and only the
service may serve.

The service creates ``\\\\.\\pipe\\caretaker-agent-session`` with a DACL (``PIPE_SDDL``) that gives
SYSTEM and Administrators full control and interactive users (a console or Remote Desktop session,
never a network logon) read and write, but not FILE_CREATE_PIPE_INSTANCE: nobody but the service can
add a server end to the name. The first instance is created with FILE_FLAG_FIRST_PIPE_INSTANCE, so if
another process got the name first (squatting), the service refuses to use it and says so.
Remote clients are rejected (PIPE_REJECT_REMOTE_CLIENTS).

For each connection the kernel reports the client's session (GetNamedPipeClientSessionId): a helper
speaks for the session it runs in and nothing else. A helper checks the other way too: the server end
must be in session 0 (GetNamedPipeServerSessionId), where only services run.

Every Windows call goes through :class:`PipeApi`; the real one (:class:`Win32Pipes`) uses _winapi's
overlapped I/O, so a warning can be written while a read waits, and tests drive the listener and the
connection with a fake.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the helper imports this module

DEFAULT_ADDRESS = r"\\.\pipe\caretaker-agent-session"
# SYSTEM and Administrators: full control. Interactive users: FILE_GENERIC_READ (0x120089) with
# FILE_WRITE_DATA (0x2) and FILE_WRITE_ATTRIBUTES (0x100), without FILE_APPEND_DATA (0x4), which on a
# pipe is FILE_CREATE_PIPE_INSTANCE.
PIPE_SDDL = "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;0x12018b;;;IU)"
CLIENT_ACCESS = 0x0012018B  # what a helper asks for when it opens the pipe: exactly what the DACL grants
SERVICE_SESSION = 0


if TYPE_CHECKING:
    from typing import Protocol

    class PipeApi(Protocol):
        def create(self, name: str, sddl: str, first: bool) -> int:
            """A new server instance of the pipe; ``first`` fails if the name exists already."""
            ...

        def accept(self, handle: int) -> None:
            """Block until a client connects to this instance."""
            ...

        def open(self, name: str) -> int:
            """The client end, with CLIENT_ACCESS."""
            ...

        def client_session(self, handle: int) -> int: ...

        def client_pid(self, handle: int) -> int: ...

        def server_session(self, handle: int) -> int: ...

        def read(self, handle: int, size: int) -> bytes:
            """Up to ``size`` bytes; b"" once the other end has closed."""
            ...

        def write(self, handle: int, data: bytes) -> None: ...

        def close(self, handle: int) -> None: ...


class PipePeer:
    """A helper as the pipe and Terminal Services name it."""

    __slots__ = ("pid", "session", "uid", "user")

    def __init__(self, user: str, pid: int, session: int) -> None:
        self.user, self.uid, self.pid, self.session = user, None, pid, str(session)

    def __repr__(self) -> str:
        return f"{self.user} (session {self.session}, pid {self.pid})"


class PipeConnection:
    """One end of the pipe: whole lines in, whole messages out."""

    def __init__(self, api: PipeApi, handle: int) -> None:
        self._api = api
        self._handle = handle
        self._buffer = b""
        self._closed = False
        self._closing = threading.Lock()

    def read_line(self, limit: int) -> bytes:
        while b"\n" not in self._buffer and len(self._buffer) < limit:
            chunk = self._api.read(self._handle, 4096)
            if not chunk:
                break
            self._buffer += chunk
        end = self._buffer.find(b"\n")
        cut = min(limit, end + 1 if end >= 0 else len(self._buffer))
        line, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return line

    def write(self, data: bytes) -> None:
        self._api.write(self._handle, data)

    def close(self) -> None:
        with self._closing:
            if self._closed:
                return
            self._closed = True
        self._api.close(self._handle)


class PipeListener:
    """The service's end. ``user_of_session`` names a session's user (Terminal Services)."""

    def __init__(self, api: PipeApi, user_of_session: Callable[[int], str], name: str = DEFAULT_ADDRESS) -> None:
        self._api = api
        self._user_of_session = user_of_session
        self._name = name
        self._closed = False
        # Created now, so a squatter is found at start and not at the first helper's connection.
        self._waiting = api.create(name, PIPE_SDDL, first=True)

    def accept(self) -> tuple[PipeConnection, PipePeer]:
        handle = self._waiting
        self._api.accept(handle)
        if self._closed:
            self._api.close(handle)
            raise OSError("the session channel is closed")
        self._waiting = self._api.create(self._name, PIPE_SDDL, first=False)
        session = self._api.client_session(handle)
        return PipeConnection(self._api, handle), PipePeer(self._user_of_session(session) or f"session {session}",
                                                           self._api.client_pid(handle), session)

    def close(self) -> None:
        """Stop listening: a last connection of our own wakes the thread waiting in ``accept``."""
        self._closed = True
        try:
            self._api.close(self._api.open(self._name))
        except OSError:
            self._api.close(self._waiting)


def connect(api: PipeApi, name: str = DEFAULT_ADDRESS) -> PipeConnection:
    """The helper's end, once it is sure a service (session 0) holds the server end."""
    handle = api.open(name)
    session = api.server_session(handle)
    if session != SERVICE_SESSION:
        api.close(handle)
        raise PermissionError(f"{name} is served from session {session}, not by a service: not the agent")
    return PipeConnection(api, handle)


class Win32Pipes:
    """PipeApi on Windows: _winapi (CPython's own, as multiprocessing uses it) with overlapped I/O, and
    kernel32/advapi32 through ctypes for the security descriptor and the session and process ids."""

    def __init__(self) -> None:
        import _winapi  # type: ignore[import-not-found]  # Windows only
        import ctypes
        from ctypes import wintypes

        self._winapi, self._ctypes, self._wintypes = _winapi, ctypes, wintypes
        self._kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        self._advapi32 = ctypes.windll.advapi32  # type: ignore[attr-defined]
        self._attributes: dict[str, object] = {}  # kept alive: Windows reads them at each CreateNamedPipe

    def _security(self, sddl: str) -> int:
        ctypes, wintypes = self._ctypes, self._wintypes
        if sddl not in self._attributes:
            class SecurityAttributes(ctypes.Structure):
                _fields_ = (("nLength", wintypes.DWORD), ("lpSecurityDescriptor", ctypes.c_void_p),
                            ("bInheritHandle", wintypes.BOOL))

            descriptor = ctypes.c_void_p()
            if not self._advapi32.ConvertStringSecurityDescriptorToSecurityDescriptorW(
                    sddl, 1, ctypes.byref(descriptor), None):
                raise ctypes.WinError()
            self._attributes[sddl] = SecurityAttributes(ctypes.sizeof(SecurityAttributes), descriptor, False)
        return ctypes.addressof(self._attributes[sddl])

    def create(self, name: str, sddl: str, first: bool) -> int:
        w = self._winapi
        first_instance = 0x00080000  # FILE_FLAG_FIRST_PIPE_INSTANCE
        reject_remote = 0x00000008  # PIPE_REJECT_REMOTE_CLIENTS
        return w.CreateNamedPipe(name, w.PIPE_ACCESS_DUPLEX | w.FILE_FLAG_OVERLAPPED | (first_instance if first else 0),
                                 w.PIPE_TYPE_BYTE | w.PIPE_READMODE_BYTE | w.PIPE_WAIT | reject_remote,
                                 w.PIPE_UNLIMITED_INSTANCES, 4096, 4096, 0, self._security(sddl))

    def _finish(self, overlapped: object, error: int) -> tuple[int, int]:
        w = self._winapi
        if error == w.ERROR_IO_PENDING:
            w.WaitForMultipleObjects([overlapped.event], False, w.INFINITE)  # type: ignore[attr-defined]
        return overlapped.GetOverlappedResult(True)  # type: ignore[attr-defined]

    def accept(self, handle: int) -> None:
        w = self._winapi
        overlapped = w.ConnectNamedPipe(handle, overlapped=True)
        _count, error = self._finish(overlapped, w.ERROR_IO_PENDING)
        if error not in (0, w.ERROR_PIPE_CONNECTED):
            raise OSError(error, "ConnectNamedPipe failed")

    def open(self, name: str) -> int:
        w = self._winapi
        return w.CreateFile(name, CLIENT_ACCESS, 0, w.NULL, w.OPEN_EXISTING, w.FILE_FLAG_OVERLAPPED, w.NULL)

    def _ulong(self, function: str, handle: int) -> int:
        value = self._wintypes.ULONG()
        if not getattr(self._kernel32, function)(self._wintypes.HANDLE(handle), self._ctypes.byref(value)):
            raise self._ctypes.WinError()
        return value.value

    def client_session(self, handle: int) -> int:
        return self._ulong("GetNamedPipeClientSessionId", handle)

    def client_pid(self, handle: int) -> int:
        return self._ulong("GetNamedPipeClientProcessId", handle)

    def server_session(self, handle: int) -> int:
        return self._ulong("GetNamedPipeServerSessionId", handle)

    def read(self, handle: int, size: int) -> bytes:
        w = self._winapi
        try:
            overlapped, error = w.ReadFile(handle, size, overlapped=True)
            _count, error = self._finish(overlapped, error)
        except OSError as exc:
            if getattr(exc, "winerror", None) == w.ERROR_BROKEN_PIPE:
                return b""
            raise
        if error == w.ERROR_BROKEN_PIPE:
            return b""
        if error:
            raise OSError(error, "ReadFile failed")
        return bytes(overlapped.getbuffer())

    def write(self, handle: int, data: bytes) -> None:
        overlapped, error = self._winapi.WriteFile(handle, data, overlapped=True)
        _count, error = self._finish(overlapped, error)
        if error:
            raise OSError(error, "WriteFile failed")

    def close(self, handle: int) -> None:
        self._winapi.CloseHandle(handle)
