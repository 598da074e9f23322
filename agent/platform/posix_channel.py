"""The session channel on Linux and macOS: a Unix socket whose peers the kernel names.

The service listens on a socket in a directory of its own (``/run/caretaker-agent`` under systemd).
Any local user may connect, and the kernel says which one did: SO_PEERCRED on Linux, LOCAL_PEERCRED
(what getpeereid(3) reads) on macOS. A helper speaks for the user it runs as and for nobody else, so
there is no claim in the protocol for it to lie in. The helper imports this module: stdlib only, small.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import struct
import sys
from pathlib import Path

# macOS <sys/un.h>: getsockopt(fd, SOL_LOCAL, LOCAL_PEERCRED) fills a struct xucred
# {u_int cr_version; uid_t cr_uid; short cr_ngroups; gid_t cr_groups[16]}.
SOL_LOCAL = 0
LOCAL_PEERCRED = 0x001
XUCRED = struct.Struct("=IIh2x16I")
SEND_TIMEOUT_SECONDS = 5.0


class Peer:
    """Who is at the other end, as the kernel says."""

    __slots__ = ("pid", "session", "uid", "user")

    def __init__(self, user: str, uid: int | None = None, pid: int | None = None, session: str | None = None):
        self.user, self.uid, self.pid, self.session = user, uid, pid, session

    def __repr__(self) -> str:
        return f"{self.user} (uid {self.uid}, pid {self.pid})"


class SocketConnection:
    """One end of the channel: whole lines in, whole messages out."""

    def __init__(self, sock: socket.socket) -> None:
        self._socket = sock
        self._reader = sock.makefile("rb")

    def read_line(self, limit: int) -> bytes:
        """Up to ``limit`` bytes ending in a newline; b"" once the other end has gone."""
        return self._reader.readline(limit)

    def write(self, data: bytes) -> None:
        self._socket.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._reader.close()
        self._socket.close()


def parse_xucred(data: bytes) -> int:
    """The uid in a macOS struct xucred."""
    _version, uid, *_rest = XUCRED.unpack_from(data.ljust(XUCRED.size, b"\0"))
    return uid


def peer_credentials(sock: socket.socket) -> tuple[int, int | None]:
    """(uid, pid) of the process at the other end of a connected Unix socket."""
    if sys.platform.startswith("linux"):
        pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                              struct.calcsize("3i")))
        return uid, pid
    return parse_xucred(sock.getsockopt(SOL_LOCAL, LOCAL_PEERCRED, XUCRED.size)), None


def user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


class UnixListener:
    """The service's end: a socket any local user may connect to (mode 0666) in a directory only the
    service may write to, so nobody else can put a socket of their own at the path.

    The path is taken over only from an agent that did not stop cleanly: while another process answers
    on it (the installed service, when someone runs ``caretaker-agent run`` by hand), this one refuses,
    as a second Windows pipe instance does; and closing removes the path only while it is still this
    socket, so a stopping agent never takes the channel from the one that replaced it."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        directory = path.parent.stat()
        if directory.st_uid != os.geteuid() or directory.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise PermissionError(f"{path.parent} must belong to this user and be writable by it alone")
        if _answers(path):
            raise FileExistsError(errno.EADDRINUSE, "another process is listening there", str(path))
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by an agent that did not stop cleanly
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.bind(str(path))
        os.chmod(path, 0o666)
        self._identity = _identity(path)
        self._socket.listen(16)
        self.path = path
        self._closed = False

    def accept(self) -> tuple[SocketConnection, Peer]:
        """The next helper to connect; raises OSError once closed."""
        sock, _address = self._socket.accept()
        if self._closed:
            sock.close()
            raise OSError("the session channel is closed")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", int(SEND_TIMEOUT_SECONDS), 0))
        uid, pid = peer_credentials(sock)
        return SocketConnection(sock), Peer(user_name(uid), uid, pid)

    def close(self) -> None:
        """Stop listening; a thread blocked in ``accept`` is woken by a last connection (portable, unlike
        shutting a listening socket down, which wakes nobody on macOS). Once the path is another socket's,
        shutting down is all there is: a connection would reach the other agent."""
        self._closed = True
        ours = _identity(self.path) == self._identity
        if ours:
            with contextlib.suppress(OSError):
                connect(str(self.path)).close()
        else:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        if ours:
            with contextlib.suppress(OSError):
                self.path.unlink()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _answers(path: Path) -> bool:
    """Whether a process listens on the socket at ``path``: a stale one refuses connections, a busy one
    keeps them waiting."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(SEND_TIMEOUT_SECONDS)
    try:
        probe.connect(str(path))
    except TimeoutError:
        return True
    except OSError:
        return False
    finally:
        probe.close()
    return True


def connect(address: str) -> SocketConnection:
    """The helper's end."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    return SocketConnection(sock)
