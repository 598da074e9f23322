"""The service's end of every session: who is signed in, what their helpers say, the warning on screen.

Helpers connect to the channel (a Unix socket, or a named pipe on Windows) and report their session's
idle seconds and lock state every ``every_seconds``; the desk keeps the latest answer of each and
judges with :func:`agent.session.view.judge`. Each helper gets a thread that blocks reading its
connection, so the desk costs nothing between messages.

What a helper may say is narrow (``wire``), and the desk checks even that: a line that is not a
valid message, idle time that grows faster than the clock, or a flood of messages ends the
connection, and the session it spoke for is then unanswered, which keeps the machine on. A helper
that stops reporting (hung, or slow) counts as gone after three missed reports. A Postpone press is
taken only for the warning on screen, and only from the helper of a signed-in session.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from agent.session import wire
from agent.session.view import Answer, SessionView, SignedIn, SystemIdle, judge

LOG = logging.getLogger("caretaker.agent.sessions")
MAX_HELPERS = 64
MAX_HELPERS_PER_USER = 4
MISSED_REPORTS = 3  # a helper silent for this many reports (plus a little) counts as gone
GRACE_SECONDS = 5.0  # for a report delayed in transit or by a busy machine
BURST = 20  # messages a helper may send at once before it must keep to its reporting rate


class Connection(Protocol):
    def read_line(self, limit: int) -> bytes: ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class Peer(Protocol):
    user: str
    uid: int | None
    pid: int | None
    session: str | None  # the session the OS put it in, where the channel says (Windows)


class Listener(Protocol):
    def accept(self) -> tuple[Connection, Peer]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Notice:
    """A power-down warning, as every signed-in session's helper shows it."""

    id: str
    title: str
    message: str
    seconds: float
    postpone_minutes: int
    postponements_left: int


class _Link:
    """One connected helper and what it last said."""

    def __init__(self, connection: Connection, peer: Peer, now: float) -> None:
        self.connection = connection
        self.peer = peer
        self.idle_seconds: float | None = None
        self.received: float | None = None  # when its last state arrived
        self.locked_since: float | None = None
        self.tokens = float(BURST)
        self.refilled = now
        self.sending = threading.Lock()

    def send(self, message: dict) -> None:
        with self.sending:
            self.connection.write(wire.encode(message))


class HelperMisbehaved(Exception):
    """A helper said something it cannot have meant; the reason is one line for the log."""


class SessionDesk:
    def __init__(self, signed_in: Callable[[], tuple[SignedIn, ...]], system_idle: Callable[[], SystemIdle],
                 listener: Listener | None = None, every_seconds: float = 15.0,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], datetime] = lambda: datetime.now(UTC),
                 log: logging.Logger = LOG) -> None:
        self._signed_in = signed_in
        self._system_idle = system_idle
        self._listener = listener
        self.every_seconds = every_seconds
        self._clock = clock
        self._wall = wall
        self._log = log
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        self._last_signed_in = clock()  # none seen yet: count from now, never from before the agent knew
        self._notice: Notice | None = None
        self._notice_deadline = 0.0
        self._pressed: str | None = None
        self.received = 0  # messages taken in from helpers, valid or not: a test waits on it
        self._closing = False

    # --- the service's questions -------------------------------------------------------------------

    def view(self) -> SessionView:
        signed_in = self._signed_in()
        now = self._clock()
        if signed_in:
            self._last_signed_in = now
        answers = self._answers(now)
        system = SystemIdle(None, "") if signed_in else self._system_idle()
        return judge(signed_in, answers, system, now - self._last_signed_in, self._wall())

    def warn(self, notice: Notice) -> int:
        """Show ``notice`` in every signed-in session that has a helper; returns how many it reached."""
        with self._lock:
            self._notice, self._pressed = notice, None
            self._notice_deadline = self._clock() + notice.seconds
        users = {s.user for s in self._signed_in()}
        reached = 0
        for link in self._current_links():
            if link.peer.user in users and self._send(link, self._warning_message()):
                reached += 1
        return reached

    def withdraw(self) -> None:
        """The warning no longer stands (the window ended, the schedule changed, the machine stays on)."""
        with self._lock:
            notice, self._notice, self._pressed = self._notice, None, None
        if notice is not None:
            for link in self._current_links():
                self._send(link, wire.withdraw(notice.id))

    def connected(self) -> tuple[Peer, ...]:
        """The helpers connected now, as the OS named them."""
        return tuple(link.peer for link in self._current_links())

    def postponed(self, notice_id: str) -> str | None:
        """Who pressed Postpone on that warning, if anyone did."""
        with self._lock:
            return self._pressed if self._notice is not None and self._notice.id == notice_id else None

    # --- the channel ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._listener is not None:
            threading.Thread(target=self._accept, name="session-channel", daemon=True).start()

    def close(self) -> None:
        self._closing = True
        if self._listener is not None:
            self._listener.close()
        for link in self._current_links():
            link.connection.close()

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                connection, peer = self._listener.accept()
            except OSError as exc:
                if self._closing:
                    return
                # Out of file handles, a pipe instance Windows would not create: the channel stays open.
                self._log.warning("session channel: %s; accepting helpers again in a second", exc)
                time.sleep(1.0)
                continue
            refusal = self._refusal(peer)
            if refusal:
                self._log.warning("refused a session helper of %s: %s", peer.user, refusal)
                connection.close()
                continue
            link = _Link(connection, peer, self._clock())
            with self._lock:
                self._links.append(link)
            threading.Thread(target=self._serve, args=(link,), name=f"session-helper-{peer.user}",
                             daemon=True).start()

    def _refusal(self, peer: Peer) -> str:
        links = self._current_links()
        if len(links) >= MAX_HELPERS:
            return f"{MAX_HELPERS} helpers are connected already"
        if sum(1 for link in links if link.peer.user == peer.user) >= MAX_HELPERS_PER_USER:
            return f"it has {MAX_HELPERS_PER_USER} connected already"
        return ""

    def _serve(self, link: _Link) -> None:
        peer = link.peer
        self._log.info("session helper of %s connected (uid %s, pid %s%s)", peer.user, peer.uid, peer.pid,
                       f", session {peer.session}" if peer.session else "")
        ending = "disconnected"
        try:
            link.send(wire.hello(self.every_seconds))
            with self._lock:
                standing = self._notice is not None
            if standing and peer.user in {s.user for s in self._signed_in()}:
                link.send(self._warning_message())
            while True:
                line = link.connection.read_line(wire.MAX_LINE + 1)
                if not line:
                    break
                self._receive(link, line)
        except (HelperMisbehaved, wire.WireError) as exc:
            ending = f"dropped: {exc}"
            self._log.warning("session helper of %s (pid %s) %s; its session counts as unanswered", peer.user,
                              peer.pid, ending)
        except OSError as exc:
            ending = f"disconnected ({exc})"
        finally:
            with self._lock:
                if link in self._links:
                    self._links.remove(link)
            link.connection.close()
        if not ending.startswith("dropped"):
            self._log.info("session helper of %s %s", peer.user, ending)

    def _receive(self, link: _Link, line: bytes) -> None:
        try:
            self._take(link, line)
        finally:
            with self._lock:
                self.received += 1

    def _take(self, link: _Link, line: bytes) -> None:
        now = self._clock()
        link.tokens = min(BURST, link.tokens + (now - link.refilled) * 2 / self.every_seconds)
        link.refilled = now
        link.tokens -= 1
        if link.tokens < 0:
            raise HelperMisbehaved(f"more than {BURST} messages at once, then more than two per report")
        message = wire.decode(line, wire.Kind.STATE, wire.Kind.POSTPONE)
        if message["type"] == wire.Kind.POSTPONE:
            self._postpone(link, message["warning"])
            return
        idle, locked = message["idle_seconds"], message["locked"]
        if idle is not None and link.idle_seconds is not None and link.received is not None:
            grown = idle - link.idle_seconds
            if grown > now - link.received + GRACE_SECONDS:
                raise HelperMisbehaved(f"idle time grew by {grown:.0f} s in {now - link.received:.0f} s")
        with self._lock:
            link.idle_seconds, link.received = idle, now
            if not locked:
                link.locked_since = None
            elif link.locked_since is None:
                link.locked_since = now

    def _postpone(self, link: _Link, notice_id: str) -> None:
        signed_in = {s.user for s in self._signed_in()}
        with self._lock:
            notice = self._notice
            if notice is None or notice.id != notice_id or link.peer.user not in signed_in:
                self._log.info("ignored Postpone from the session helper of %s: no such warning on screen",
                               link.peer.user)
                return
            if notice.postponements_left < 1 or self._clock() > self._notice_deadline + GRACE_SECONDS:
                self._log.info("ignored Postpone from %s: the warning can no longer be postponed", link.peer.user)
                return
            self._pressed = self._pressed or link.peer.user
        self._log.info("%s pressed Postpone on warning %s", link.peer.user, notice_id)

    # --- internals -------------------------------------------------------------------------------------

    def _current_links(self) -> list[_Link]:
        with self._lock:
            return list(self._links)

    def _answers(self, now: float) -> tuple[Answer, ...]:
        fresh = MISSED_REPORTS * self.every_seconds + GRACE_SECONDS
        with self._lock:
            return tuple(Answer(link.peer.user, link.peer.session, link.idle_seconds,
                                None if link.locked_since is None else now - link.locked_since)
                         for link in self._links if link.received is not None and now - link.received <= fresh)

    def _warning_message(self) -> dict:
        with self._lock:
            notice = self._notice
            assert notice is not None
            left = max(0.0, self._notice_deadline - self._clock())
        return wire.warning(notice.id, notice.title, notice.message, round(left, 1), notice.postpone_minutes,
                            notice.postponements_left)

    def _send(self, link: _Link, message: dict) -> bool:
        try:
            link.send(message)
        except OSError as exc:  # the helper went, or stopped reading: its reader thread tidies up
            self._log.info("could not reach the session helper of %s: %s", link.peer.user, exc)
            link.connection.close()
            return False
        return True


# --- the agent's one desk ------------------------------------------------------------------------------

_installed: SessionDesk | None = None


def install(desk: SessionDesk) -> None:
    """Make ``desk`` the one the activity collector and the enforcer ask (``caretaker-agent run``)."""
    global _installed
    _installed = desk


def current(root: Path = Path("/")) -> SessionDesk:
    """The installed desk; without one (``collect``, ``once``), a desk no helper can reach."""
    global _installed
    if _installed is None:
        _installed = for_machine(root)
    return _installed


def for_machine(root: Path, address: str | None = None, every_seconds: float = 15.0,
                log: logging.Logger = LOG) -> SessionDesk:
    """This machine's sessions; listening for helpers on ``address`` when given."""
    from agent import platform

    backend = platform.current()
    listener = None
    if address:
        try:
            listener = backend.session_listener(address)
        except OSError as exc:
            log.warning("session helpers cannot reach the agent (%s: %s): idle is unknown while anyone is "
                        "signed in, so power-downs that wait for idle keep the machine on", address, exc)
    return SessionDesk(lambda: backend.signed_in(root), lambda: backend.system_idle(root), listener,
                       every_seconds, log=log)
