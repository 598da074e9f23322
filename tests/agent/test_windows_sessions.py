"""The Windows and macOS ends of the session channel, which cannot run here: the named pipe's ACL, its
first-instance and session-0 checks, Terminal Services' session list and the lock test, each behind a
small interface driven by a fake (as tests/fixtures/<os>/ does for parsers); and macOS's console users.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

import pytest

from agent.platform import macos, macos_session, windows_channel, windows_session, windows_wts
from agent.platform.windows_wts import SessionState
from agent.session.view import SignedIn

from .collectors.conftest import FIXTURES


@dataclass
class FakeEnd:
    """One handle: its pipe name, which side it is, and the bytes waiting to be read at this end."""

    name: str
    server: bool
    session: int
    pid: int
    inbox: queue.Queue = field(default_factory=queue.Queue)
    other: FakeEnd | None = None
    closed: bool = False


class FakePipes:
    """Named pipes in memory, with Windows' rules for instance creation and a session per process."""

    def __init__(self, client_session: int = 2, server_session: int = 0) -> None:
        self.handles: dict[int, FakeEnd] = {}
        self.created: list[tuple[str, str, bool]] = []
        self.clients_session, self.servers_session = client_session, server_session
        self.owners: dict[str, int] = {}  # pipe name -> the session that made its first instance
        self.listening: queue.Queue[int] = queue.Queue()
        self._next = 100

    def _handle(self, end: FakeEnd) -> int:
        self._next += 1
        self.handles[self._next] = end
        return self._next

    def create(self, name: str, sddl: str, first: bool) -> int:
        if first and name in self.owners:
            raise PermissionError(5, "Access is denied")  # FILE_FLAG_FIRST_PIPE_INSTANCE: the name is taken
        self.owners.setdefault(name, self.servers_session)
        self.created.append((name, sddl, first))
        return self._handle(FakeEnd(name, True, self.servers_session, 4242))

    def accept(self, handle: int) -> None:
        self.listening.put(handle)
        end = self.handles[handle]
        while end.other is None:
            threading.Event().wait(0.005)

    def open(self, name: str) -> int:
        if name not in self.owners:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        server = self.handles[self.listening.get(timeout=5)]
        client = FakeEnd(name, False, self.clients_session, 777, other=server)
        handle = self._handle(client)
        server.other = client
        return handle

    def client_session(self, handle: int) -> int:
        return self.handles[handle].other.session

    def client_pid(self, handle: int) -> int:
        return self.handles[handle].other.pid

    def server_session(self, handle: int) -> int:
        return self.owners[self.handles[handle].name]

    def read(self, handle: int, size: int) -> bytes:
        end = self.handles[handle]
        if end.other is not None and end.other.closed and end.inbox.empty():
            return b""  # a broken pipe reads as the end, every time
        return end.inbox.get(timeout=5)[:size]

    def write(self, handle: int, data: bytes) -> None:
        self.handles[handle].other.inbox.put(data)

    def close(self, handle: int) -> None:
        end = self.handles[handle]
        end.closed = True
        if end.other is not None:
            end.other.inbox.put(b"")


def test_the_pipe_lets_interactive_users_read_and_write_but_never_serve():
    assert windows_channel.PIPE_SDDL == "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;0x12018b;;;IU)"
    file_append_data = file_create_pipe_instance = 0x4
    granted = int(windows_channel.PIPE_SDDL.split(";;")[-2].split(";")[-1], 16)
    assert granted & file_create_pipe_instance == 0 == granted & file_append_data
    assert granted & 0x1 and granted & 0x2  # FILE_READ_DATA, FILE_WRITE_DATA
    assert granted == windows_channel.CLIENT_ACCESS  # a helper asks for exactly what it is given


def test_the_service_takes_the_pipe_name_first_and_names_each_helper_by_its_session():
    pipes = FakePipes(client_session=3)
    listener = windows_channel.PipeListener(pipes, {3: "pupil"}.get)
    assert pipes.created == [(windows_channel.DEFAULT_ADDRESS, windows_channel.PIPE_SDDL, True)]
    accepted: list = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()))
    thread.start()
    helper = windows_channel.connect(pipes)
    thread.join(5)
    (connection, peer), = accepted
    assert (peer.user, peer.session, peer.pid, peer.uid) == ("pupil", "3", 777, None)
    assert pipes.created[1] == (windows_channel.DEFAULT_ADDRESS, windows_channel.PIPE_SDDL, False)  # the next one
    helper.write(b'{"type":"state",')
    helper.write(b'"idle_seconds":5,"locked":false}\n{"type"')
    assert connection.read_line(2049) == b'{"type":"state","idle_seconds":5,"locked":false}\n'
    connection.write(b"hello\n")
    assert helper.read_line(2049) == b"hello\n"
    helper.close()
    assert connection.read_line(2049) == b'{"type"'  # what was left, then the end
    assert connection.read_line(2049) == b""


def test_a_squatted_pipe_name_is_refused_at_start():
    pipes = FakePipes()
    pipes.create(windows_channel.DEFAULT_ADDRESS, "D:(A;;GA;;;WD)", first=True)  # someone else's, first
    with pytest.raises(PermissionError):
        windows_channel.PipeListener(pipes, lambda session: "")


def test_a_helper_talks_only_to_a_server_in_session_0():
    pipes = FakePipes(server_session=2)  # a user's own process holds the name
    listener = windows_channel.PipeListener(pipes, lambda session: "")
    threading.Thread(target=listener.accept, daemon=True).start()
    with pytest.raises(PermissionError, match="session 2, not by a service"):
        windows_channel.connect(pipes)


def test_closing_the_listener_wakes_the_thread_waiting_for_a_helper():
    pipes = FakePipes()
    listener = windows_channel.PipeListener(pipes, lambda session: "")
    failed: list[Exception] = []

    def wait() -> None:
        try:
            listener.accept()
        except OSError as exc:
            failed.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    listener.close()
    thread.join(5)
    assert not thread.is_alive() and "closed" in str(failed[0])


class FakeWts:
    def __init__(self, rows: list[tuple[int, int, str]]) -> None:
        self.rows = rows

    def sessions(self) -> list[tuple[int, int]]:
        return [(session, state) for session, state, _ in self.rows]

    def user(self, session: int) -> str:
        return next(user for s, _, user in self.rows if s == session)


def test_signed_in_windows_sessions_are_those_with_a_user_but_never_session_0():
    wts = FakeWts([(0, SessionState.DISCONNECTED, "SYSTEM"), (1, SessionState.CONNECTED, ""),  # sign-in screen
                   (2, SessionState.ACTIVE, "pupil"), (3, SessionState.DISCONNECTED, "teacher"),
                   (65536, SessionState.LISTEN, "")])
    assert windows_wts.signed_in_sessions(wts) == (SignedIn("pupil", "2"), SignedIn("teacher", "3"))


def test_a_console_at_the_sign_in_screen_is_nobody_signed_in():
    assert windows_wts.signed_in_sessions(FakeWts([(0, SessionState.DISCONNECTED, ""),
                                                   (1, SessionState.CONNECTED, "")])) == ()


@pytest.mark.parametrize(("desktop", "locked"), [("Default", False), ("Winlogon", True), (None, True)])
def test_the_session_is_locked_when_input_goes_to_another_desktop(desktop, locked):
    assert windows_session.locked_by_input_desktop(desktop) is locked


CONSOLE_USERS = (FIXTURES / "macos" / "ioreg-console-users" / "two-users-one-locked.plist").read_bytes()


@pytest.mark.parametrize(("uid", "state"), [(501, (True, True)), (502, (False, False)), (503, None)])
def test_a_mac_helper_finds_its_own_gui_session_among_the_console_users(uid, state):
    assert macos_session.parse_console_users(CONSOLE_USERS, uid) == state


def test_a_garbled_console_users_answer_is_no_answer():
    assert macos_session.parse_console_users(b"<plist>", 501) is None


def test_mac_sessions_from_utmpx_know_the_console_from_the_network():
    User = type("User", (), {})

    def user(name: str, terminal: str | None, host: str | None) -> object:
        entry = User()
        entry.name, entry.terminal, entry.host, entry.started = name, terminal, host, 1_771_228_800.0
        return entry

    found = macos.signed_in_from_users([user("teacher", "console", None), user("teacher", "ttys000", None),
                                        user("technician", "ttys001", "10.12.0.9")])
    assert [(s.user, s.session, s.remote) for s in found] == [
        ("teacher", "console", False), ("teacher", "ttys000", False), ("technician", "ttys001", True)]


def test_the_mac_dialog_quotes_the_message_so_it_cannot_break_out():
    assert macos_session.applescript_text('Say "bye" \\ now') == '"Say \\"bye\\" \\\\ now"'
