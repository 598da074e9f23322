"""The one rule for how long a machine has been left alone, from who is signed in and what their helpers say.

- Nobody signed in (the sign-in screen): the OS's own measure of input idle where it keeps one a
  service can read (logind's on Linux, HIDIdleTime on macOS), never more than the time since the last
  signed-in session was seen to end (or the agent started). Windows keeps none that a service in
  session 0 can read, so there it is that time alone.
- Someone signed in: each session's idle comes from its session helper, and from nothing else. A
  session no helper answers for makes the machine's idle *unknown*: a reading from the service's own
  session (Windows session 0) or a guess from elsewhere is never used. The machine's idle is that of
  its least idle session.
- A locked session counts as idle from the moment it was locked (input at the lock screen, a pupil
  nudging the mouse, is not use), and no session is idle for longer than it has been signed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

HELPER_SOURCE = "session helper"
SIGN_OUT_SOURCE = "since sign-out"
UNANSWERED_SOURCE = "no session helper"


@dataclass(frozen=True)
class SignedIn:
    """A signed-in session as the OS lists it."""

    user: str
    session: str  # the OS's name for it: a Windows session id, a utmp line ("tty7", "pts/0", "console")
    remote: bool = False  # over the network (SSH): no helper of the console's user speaks for it
    since: datetime | None = None

    def describe(self) -> str:
        return f"{self.user} ({self.session})"


@dataclass(frozen=True)
class Answer:
    """One helper's latest state, and who the OS says it runs as."""

    user: str
    session: str | None  # the session the kernel put it in (Windows); None: it speaks for its user's local sessions
    idle_seconds: float | None  # None: the helper cannot tell in its session
    locked_seconds: float | None = None  # how long the service has seen it report the screen locked

    def covers(self, signed_in: SignedIn) -> bool:
        if self.session is not None:
            return self.session == signed_in.session
        return self.user == signed_in.user and not signed_in.remote


@dataclass(frozen=True)
class SystemIdle:
    """The OS's own idle measure for the sign-in screen, and what it came from."""

    seconds: float | None
    source: str


@dataclass(frozen=True)
class SessionView:
    sessions: int  # signed-in sessions
    idle_seconds: float | None  # the machine's: None when any signed-in session cannot be answered for
    source: str  # what idle_seconds comes from, or UNANSWERED_SOURCE
    unanswered: tuple[str, ...] = ()  # signed-in sessions no helper answers for, e.g. "alice (tty7)"
    locked: bool = False  # every signed-in session is locked


def judge(signed_in: tuple[SignedIn, ...], answers: tuple[Answer, ...], system: SystemIdle,
          since_sign_out: float, now: datetime) -> SessionView:
    """``since_sign_out``: seconds since a signed-in session was last seen, or since the agent started."""
    if not signed_in:
        if system.seconds is not None and system.seconds <= since_sign_out:
            return SessionView(0, system.seconds, system.source)
        return SessionView(0, since_sign_out, SIGN_OUT_SOURCE)
    idle: list[float] = []
    unanswered: list[str] = []
    locked = True
    for session in signed_in:
        covering = [a for a in answers if a.covers(session) and a.idle_seconds is not None]
        if not covering:
            unanswered.append(session.describe())
            continue
        seconds = min(_effective(a) for a in covering)
        if session.since is not None:
            seconds = min(seconds, max(0.0, (now - session.since).total_seconds()))
        locked &= all(a.locked_seconds is not None for a in covering)
        idle.append(seconds)
    if unanswered:
        return SessionView(len(signed_in), None, UNANSWERED_SOURCE, tuple(unanswered))
    return SessionView(len(signed_in), min(idle), HELPER_SOURCE, (), locked)


def _effective(answer: Answer) -> float:
    assert answer.idle_seconds is not None
    if answer.locked_seconds is None:
        return answer.idle_seconds
    return max(answer.idle_seconds, answer.locked_seconds)
