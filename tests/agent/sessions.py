"""A session desk over a real Unix socket, in this process, with the clocks and the OS's answers in the
test's hands: who is signed in, and the sign-in screen's own idle measure.

"Helpers" here are sockets the test writes protocol lines to (this process's uid, so they are root's
helpers); tests/agent/test_session_helper.py runs the real helper and service processes instead.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.platform import posix_channel
from agent.platform.posix_channel import SocketConnection
from agent.session import wire
from agent.session.desk import SessionDesk
from agent.session.view import SignedIn, SystemIdle

ME = posix_channel.user_name(os.geteuid())
T0 = datetime(2026, 2, 16, 18, 0, tzinfo=UTC)  # Monday of half term, 18:00


class Clock:
    """The wall clock the enforcer reads and the monotonic clock the desk reads, moving together."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return (self.now - T0).total_seconds() + 1000.0

    def advance(self, minutes: float = 0, seconds: float = 0) -> None:
        self.now += timedelta(minutes=minutes, seconds=seconds)


def wait_for(condition: Callable[[], object], seconds: float = 5.0) -> object:
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
    return found


class FakeHelper:
    """A helper the test speaks for: it sends states and Postpone presses, and reads what the desk sends."""

    def __init__(self, desk: SessionDesk, path: Path) -> None:
        self.desk = desk
        self.connection: SocketConnection = posix_channel.connect(str(path))
        self.hello = self.read()

    def read(self) -> dict:
        return json.loads(self.connection.read_line(wire.MAX_LINE + 1))

    def send_line(self, line: bytes) -> None:
        self.connection.write(line)

    def state(self, idle_seconds: float | None, locked: bool = False) -> None:
        """Send a state and wait until the desk has taken it in."""
        before = self.desk.received
        self.send_line(wire.encode(wire.state(idle_seconds, locked)))
        wait_for(lambda: self.desk.received > before)

    def postpone(self, warning_id: str) -> None:
        before = self.desk.received
        self.send_line(wire.encode(wire.postpone(warning_id)))
        wait_for(lambda: self.desk.received > before)

    def close(self) -> None:
        self.connection.close()


class Bench:
    """The OS side: ``signed_in`` and ``system`` are what the desk will be told."""

    def __init__(self, tmp_path: Path, clock: Clock) -> None:
        self.clock = clock
        self.signed_in: tuple[SignedIn, ...] = ()
        self.system = SystemIdle(None, "logind")
        self.path = tmp_path / "run" / "session.sock"
        self.path.parent.mkdir(mode=0o755)
        self.desk = SessionDesk(lambda: self.signed_in, lambda: self.system,
                                posix_channel.UnixListener(self.path), every_seconds=15,
                                clock=clock.monotonic, wall=clock)
        self.desk.start()
        self.helpers: list[FakeHelper] = []

    def sign_in(self, user: str = ME, session: str = "tty7", remote: bool = False, minutes_ago: float = 120) -> None:
        self.signed_in = (*self.signed_in, SignedIn(user, session, remote,
                                                    self.clock.now - timedelta(minutes=minutes_ago)))

    def helper(self) -> FakeHelper:
        count = len(self.desk.connected())
        helper = FakeHelper(self.desk, self.path)
        wait_for(lambda: len(self.desk.connected()) > count)
        self.helpers.append(helper)
        return helper

    def close(self) -> None:
        for helper in self.helpers:
            helper.close()
        self.desk.close()
