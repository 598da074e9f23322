"""The session channel's rules: the messages (wire), the one rule for idle (view), and the service's desk
with helpers speaking the protocol over a real Unix socket, honest or not.

The real helper and service processes are in test_session_helper.py; the Windows pipe and Terminal
Services calls, behind their small interfaces, in test_windows_sessions.py.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import pytest

from agent.platform import posix_channel
from agent.session import wire
from agent.session.desk import BURST, MAX_HELPERS_PER_USER, Notice
from agent.session.view import Answer, SignedIn, SystemIdle, judge
from tests.agent.sessions import ME, T0, Bench, Clock, wait_for

ALICE_TTY7 = SignedIn("alice", "tty7", since=T0 - timedelta(hours=2))
NOTICE = Notice("w#0", "Caretaker", "This computer will shut down in 10 minutes.", 600, 10, 2)


# --- the messages ------------------------------------------------------------------------------------

def test_messages_round_trip_as_one_line_of_json():
    for message in (wire.hello(15), wire.state(12.5, False), wire.state(None, True), wire.postpone("w#0"),
                    wire.warning("w#0", "Caretaker", "Shutting down", 600, 10, 2), wire.withdraw("w#0")):
        line = wire.encode(message)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert wire.decode(line, wire.Kind(message["type"])) == message


@pytest.mark.parametrize("line", [
    pytest.param(b'{"type": "state", "idle_seconds": 5, "locked": false}', id="cut short (no newline)"),
    pytest.param(b"not json\n", id="not JSON"),
    pytest.param(b'["state"]\n', id="not an object"),
    pytest.param(b'{"type": "warning", "id": "x"}\n', id="a kind the helper may not send"),
    pytest.param(b'{"type": "state", "idle_seconds": 5}\n', id="a field missing"),
    pytest.param(b'{"type": "state", "idle_seconds": 5, "locked": false, "user": "alice"}\n',
                 id="a claim about who it is"),
    pytest.param(b'{"type": "state", "idle_seconds": -1, "locked": false}\n', id="negative idle"),
    pytest.param(b'{"type": "state", "idle_seconds": 1e300, "locked": false}\n', id="absurd idle"),
    pytest.param(b'{"type": "state", "idle_seconds": NaN, "locked": false}\n', id="NaN"),
    pytest.param(b'{"type": "state", "idle_seconds": "5", "locked": false}\n', id="a string for a number"),
    pytest.param(b'{"type": "state", "idle_seconds": true, "locked": false}\n', id="a boolean for a number"),
    pytest.param(b'{"type": "state", "idle_seconds": 5, "locked": 1}\n', id="a number for a boolean"),
    pytest.param(b'{"type": "postpone", "warning": "' + b"x" * 65 + b'"}\n', id="an id too long"),
    pytest.param(b'{"type": "state", "idle_seconds": 5, "locked": false, "pad": "' + b"x" * 3000 + b'"}\n',
                 id="a line too long"),
])
def test_anything_but_an_exact_message_is_refused(line):
    with pytest.raises(wire.WireError):
        wire.decode(line, wire.Kind.STATE, wire.Kind.POSTPONE)


# --- the rule --------------------------------------------------------------------------------------------

def answer(idle: float | None, user: str = "alice", session: str | None = None,
           locked: float | None = None) -> Answer:
    return Answer(user, session, idle, locked)


@pytest.mark.parametrize(("signed_in", "answers", "idle", "source", "unanswered"), [
    pytest.param((ALICE_TTY7,), (answer(300),), 300, "session helper", (), id="the helper's answer"),
    pytest.param((ALICE_TTY7,), (), None, "no session helper", ("alice (tty7)",), id="no helper: unknown"),
    pytest.param((ALICE_TTY7,), (answer(300, "bob"),), None, "no session helper", ("alice (tty7)",),
                 id="another user's helper does not speak for alice"),
    pytest.param((ALICE_TTY7,), (answer(None),), None, "no session helper", ("alice (tty7)",),
                 id="a helper that cannot tell"),
    pytest.param((ALICE_TTY7, SignedIn("alice", "pts/0", remote=True)), (answer(300),), None, "no session helper",
                 ("alice (pts/0)",), id="her SSH session is not her desktop's"),
    pytest.param((ALICE_TTY7, SignedIn("bob", "tty8")), (answer(300), answer(40, "bob")), 40, "session helper", (),
                 id="the least idle session"),
    pytest.param((ALICE_TTY7,), (answer(60, locked=1800),), 1800, "session helper", (),
                 id="locked: idle since the lock, whatever nudged the mouse"),
    pytest.param((ALICE_TTY7,), (answer(10 ** 7),), 7200, "session helper", (),
                 id="never idle for longer than signed in"),
    pytest.param((SignedIn("alice", "2"),), (answer(300, session="3"),), None, "no session helper",
                 ("alice (2)",), id="Windows: a helper speaks for its own session only"),
    pytest.param((SignedIn("alice", "2"),), (answer(300, session="2"),), 300, "session helper", (),
                 id="Windows: the session the kernel named"),
])
def test_idle_of_signed_in_sessions_comes_from_their_helpers_and_is_never_guessed(
        signed_in, answers, idle, source, unanswered):
    view = judge(signed_in, answers, SystemIdle(None, ""), 50_000, T0)
    assert (view.sessions, view.idle_seconds, view.source, view.unanswered) == (
        len(signed_in), idle, source, unanswered)


@pytest.mark.parametrize(("system", "since_sign_out", "idle", "source"), [
    pytest.param(SystemIdle(600, "logind"), 3600, 600, "logind", id="the OS's own measure"),
    pytest.param(SystemIdle(7200, "HIDIdleTime"), 3600, 3600, "since sign-out",
                 id="never longer than since someone was last signed in"),
    pytest.param(SystemIdle(None, ""), 900, 900, "since sign-out", id="Windows keeps none a service can read"),
])
def test_at_the_sign_in_screen_idle_is_the_systems_own(system, since_sign_out, idle, source):
    view = judge((), (), system, since_sign_out, T0)
    assert (view.sessions, view.idle_seconds, view.source, view.unanswered) == (0, idle, source, ())


# --- the desk, over a real socket --------------------------------------------------------------------------

@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def bench(tmp_path, clock):
    bench = Bench(tmp_path, clock)
    yield bench
    bench.close()


def test_the_kernel_names_the_helper_and_it_speaks_for_its_users_sessions(bench):
    bench.sign_in()
    helper = bench.helper()
    helper.state(42)
    (peer,) = bench.desk.connected()
    assert (peer.user, peer.uid) == (ME, os.geteuid())
    assert helper.hello == {"type": "hello", "version": 1, "every_seconds": 15}
    view = bench.desk.view()
    assert (view.sessions, view.idle_seconds, view.source, view.locked) == (1, 42, "session helper", False)


def test_the_socket_is_open_to_every_local_user_in_a_directory_only_the_service_writes(bench):
    assert bench.path.stat().st_mode & 0o777 == 0o666
    assert bench.path.parent.stat().st_mode & 0o022 == 0


def test_a_directory_others_may_write_to_is_refused(tmp_path):
    open_to_all = tmp_path / "open-to-all"
    open_to_all.mkdir(mode=0o777)
    open_to_all.chmod(0o777)
    with pytest.raises(PermissionError):
        posix_channel.UnixListener(open_to_all / "session.sock")


def test_a_second_agent_cannot_take_the_channel_of_one_that_is_running(bench):
    with pytest.raises(FileExistsError, match="another process is listening"):
        posix_channel.UnixListener(bench.path)
    wait_for(lambda: not bench.desk.connected())  # its look at the socket came and went, as a helper would
    bench.sign_in()
    bench.helper().state(42)
    assert bench.desk.view().idle_seconds == 42


def test_the_socket_of_an_agent_that_did_not_stop_cleanly_is_taken_over(tmp_path):
    path = tmp_path / "run" / "session.sock"
    path.parent.mkdir(mode=0o755)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # bound, never listening: what a killed agent leaves behind
    listener = posix_channel.UnixListener(path)
    try:
        posix_channel.connect(str(path)).close()
    finally:
        listener.close()
    assert not path.exists()


def test_an_agent_that_stops_leaves_the_channel_of_the_one_that_replaced_it(tmp_path):
    path = tmp_path / "run" / "session.sock"
    leaving = posix_channel.UnixListener(path)
    path.unlink()  # as an agent that started meanwhile and found this one not answering would
    staying = posix_channel.UnixListener(path)
    try:
        leaving.close()
        assert path.exists()
        connection = posix_channel.connect(str(path))
        accepted, peer = staying.accept()
        assert peer.uid == os.geteuid()
        connection.close()
        accepted.close()
    finally:
        staying.close()


def test_a_helper_that_stops_reporting_counts_as_gone(bench, clock):
    bench.sign_in()
    bench.helper().state(42)
    clock.advance(seconds=3 * 15 + 5)
    assert bench.desk.view().idle_seconds == 42
    clock.advance(seconds=1)
    assert bench.desk.view().unanswered == (f"{ME} (tty7)",)


@pytest.mark.parametrize(("lines", "why"), [
    pytest.param([b"hello there\n"], "not JSON", id="garbage"),
    pytest.param([b'{"type": "state", "idle_seconds": 5, "locked": false, "user": "alice"}\n'], "exactly the fields",
                 id="a claim to be someone else"),
    pytest.param([b"x" * 5000 + b"\n"], "longer than", id="a line too long"),
    pytest.param([wire.encode(wire.state(10, False)), wire.encode(wire.state(4000, False))], "idle time grew",
                 id="idle that grows faster than the clock"),
    pytest.param([wire.encode(wire.state(1, False))] * (BURST + 1), "more than", id="a flood"),
])
def test_a_helper_that_lies_or_misbehaves_is_dropped_and_its_session_is_unanswered(bench, caplog, lines, why):
    bench.sign_in()
    helper = bench.helper()
    for line in lines:
        helper.send_line(line)
    wait_for(lambda: not bench.desk.connected())
    assert bench.desk.view().idle_seconds is None
    assert any(why in record.getMessage() and "dropped" in record.getMessage() for record in caplog.records)


def test_each_user_may_connect_only_a_few_helpers(bench, caplog):
    for _ in range(MAX_HELPERS_PER_USER):
        bench.helper()
    extra = posix_channel.connect(str(bench.path))
    assert extra.read_line(100) == b""  # refused: closed without a hello
    extra.close()
    assert len(bench.desk.connected()) == MAX_HELPERS_PER_USER
    assert f"it has {MAX_HELPERS_PER_USER} connected already" in caplog.text


def test_warnings_reach_signed_in_users_helpers_and_postpone_counts_only_on_the_warning_on_screen(bench, clock):
    bench.sign_in()
    helper = bench.helper()
    helper.state(1800)
    assert bench.desk.warn(NOTICE) == 1
    shown = helper.read()
    assert shown == {"type": "warning", "id": "w#0", "title": "Caretaker", "message": NOTICE.message,
                     "seconds": 600, "postpone_minutes": 10, "postponements_left": 2}
    helper.postpone("w#9")  # not the one on screen
    assert bench.desk.postponed("w#0") is None
    helper.postpone("w#0")
    assert bench.desk.postponed("w#0") == ME
    assert bench.desk.postponed("w#1") is None  # a later warning starts afresh
    bench.desk.withdraw()
    assert helper.read() == {"type": "withdraw", "id": "w#0"}


def test_a_helper_that_connects_during_a_warning_is_shown_what_is_left_of_it(bench, clock):
    bench.sign_in()
    bench.desk.warn(NOTICE)
    clock.advance(minutes=4)
    helper = bench.helper()
    late = helper.read()
    assert (late["id"], late["seconds"]) == ("w#0", 360)


def test_postpone_from_a_user_who_is_not_signed_in_or_after_the_last_postponement_is_ignored(bench, clock):
    helper = bench.helper()  # root's helper, but only alice is signed in
    bench.signed_in = (ALICE_TTY7,)
    bench.desk.warn(NOTICE)
    helper.postpone("w#0")
    assert bench.desk.postponed("w#0") is None
    bench.sign_in()
    bench.desk.warn(Notice("w#2", "Caretaker", "Last warning.", 600, 10, 0))
    helper.read()
    helper.postpone("w#2")
    assert bench.desk.postponed("w#2") is None


def test_nobody_signed_in_and_no_helpers_the_machine_is_idle_since_the_agent_started(bench, clock):
    clock.advance(minutes=7)
    view = bench.desk.view()
    assert (view.sessions, view.idle_seconds, view.source) == (0, 420, "since sign-out")
    bench.sign_in()
    bench.desk.view()  # someone signed in, and then out again
    bench.signed_in = ()
    clock.advance(minutes=2)
    assert bench.desk.view().idle_seconds == 120


class FlakyListener:
    """A listener that fails once (out of file handles, say), then hands over one connection."""

    def __init__(self, connection, peer) -> None:
        self.calls = 0
        self.connection, self.peer = connection, peer
        self.closed = False

    def accept(self):
        self.calls += 1
        if self.calls == 1:
            raise OSError(24, "Too many open files")
        if self.calls == 2:
            return self.connection, self.peer
        wait_for(lambda: self.closed, seconds=30)
        raise OSError("closed")

    def close(self) -> None:
        self.closed = True


def test_a_failure_to_accept_one_helper_does_not_close_the_channel(clock, caplog):
    from agent.session.desk import SessionDesk

    ours, theirs = posix_channel.socket.socketpair()
    listener = FlakyListener(posix_channel.SocketConnection(ours), posix_channel.Peer(ME, 0, 1))
    desk = SessionDesk(lambda: (), lambda: SystemIdle(None, ""), listener, 15, clock=clock.monotonic, wall=clock)
    desk.start()
    try:
        wait_for(lambda: desk.connected(), seconds=10)
        assert "Too many open files" in caplog.text
    finally:
        desk.close()
        theirs.close()
