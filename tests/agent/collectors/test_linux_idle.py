"""Who is signed in on Linux (utmp, written by glibc, read back by ``who``), how long the sign-in screen
has been left (logind's greeter, from captured loginctl output), and what a session helper reads from
inside its session (logind's own hint, or a real X server under Xvfb)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.platform import linux_idle, linux_session
from agent.session.view import SignedIn
from tests.agent.utmp import DEAD_PROCESS, write_session

from .conftest import FIXTURES

LOGINCTL = FIXTURES / "linux" / "loginctl"
NOW_US = 9_015_412_345  # CLOCK_MONOTONIC at the moment the captured output is evaluated


def sessions(machine: str) -> list[dict[str, str]]:
    return linux_session.parse_show_session((LOGINCTL / machine / "show-session.txt").read_text())


def test_greeters_are_found_from_loginds_own_state_files(tmp_path: Path) -> None:
    sessions = tmp_path / "run" / "systemd" / "sessions"
    sessions.mkdir(parents=True)
    (sessions / "c1").write_text("# This is private data. Do not parse.\nUID=120\nUSER=gdm\nACTIVE=1\n"
                                 "IS_DISPLAY=1\nSTATE=active\nREMOTE=0\nTYPE=wayland\nCLASS=greeter\nSEAT=seat0\n")
    (sessions / "4").write_text("UID=1000\nUSER=pupil\nACTIVE=0\nSTATE=online\nTYPE=wayland\nCLASS=user\n")
    (sessions / "4.ref").write_text("")

    assert linux_idle.greeter_session_ids(tmp_path) == ("c1",)
    assert linux_idle.greeter_session_ids(tmp_path / "no-logind") == ()


def test_without_a_greeter_the_sign_in_screen_asks_loginctl_nothing(tmp_path: Path, monkeypatch) -> None:
    asked: list[list[str]] = []
    monkeypatch.setattr(linux_idle.command, "run", lambda argv, **_: asked.append(argv))
    assert linux_idle.system_idle(tmp_path) == linux_idle.SystemIdle(None, "logind")
    assert asked == []


@pytest.mark.parametrize(("machine", "idle_seconds"), [
    pytest.param("login-screen", 0.0, id="someone at the greeter"),
    pytest.param("login-screen-idle", 600.0, id="the greeter left for ten minutes"),
    pytest.param("lab-pc-in-use", None, id="no greeter: users' sessions are not the sign-in screen"),
])
def test_the_sign_in_screens_idle_comes_from_the_greeter_session(machine: str, idle_seconds: float | None) -> None:
    assert linux_idle.greeter_idle_seconds(sessions(machine), NOW_US) == idle_seconds


@pytest.mark.parametrize(("machine", "state"), [
    pytest.param("gnome-desktop-idle", (900.0, False), id="idle for 15 minutes"),
    pytest.param("lab-pc-in-use", (0.0, False), id="a session without the idle hint is in use"),
    pytest.param("idle-without-timestamp", (None, False), id="idle since an unknown time"),
])
def test_a_helper_reads_its_own_sessions_idle_hint(machine: str, state: tuple[float | None, bool]) -> None:
    assert linux_session.logind_state(sessions(machine)[0], NOW_US) == state


def test_a_locked_session_says_so() -> None:
    assert linux_session.logind_state({"IdleHint": "no", "LockedHint": "yes"}, NOW_US) == (0.0, True)


def test_show_session_blocks_keep_their_properties_apart() -> None:
    parsed = sessions("gnome-desktop-idle")

    assert parsed == [{"Id": "2", "IdleHint": "yes", "IdleSinceHintMonotonic": "8115412345", "Class": "user"},
                      {"Id": "c1", "IdleHint": "no", "IdleSinceHintMonotonic": "0", "Class": "greeter"}]


def test_signed_in_sessions_are_the_live_records_of_utmp_as_who_reads_them(tmp_path: Path) -> None:
    utmp = tmp_path / "run" / "utmp"
    started = datetime(2026, 2, 16, 8, 40, tzinfo=UTC)
    write_session(utmp, "pupil", "tty7", ":0", started.timestamp())
    write_session(utmp, "technician", "pts/1", "10.12.0.9", started.timestamp())
    write_session(utmp, "teacher", "pts/2", "10.12.0.7")
    write_session(utmp, "teacher", "pts/2", kind=DEAD_PROCESS)  # signed out again

    assert linux_idle.signed_in(tmp_path) == (
        SignedIn("pupil", "tty7", remote=False, since=started),
        SignedIn("technician", "pts/1", remote=True, since=started))
    who = subprocess.run(["who", str(utmp)], capture_output=True, text=True, check=True).stdout.split()
    assert who[:2] == ["pupil", "tty7"] and "technician" in who and "teacher" not in who


def test_no_utmp_means_nobody_is_signed_in(tmp_path: Path) -> None:
    assert linux_idle.signed_in(tmp_path) == ()


@pytest.fixture
def xvfb(monkeypatch: pytest.MonkeyPatch) -> Iterator[float]:
    """A real X server with the MIT-SCREEN-SAVER extension; yields when it started (monotonic)."""
    if not shutil.which("Xvfb"):
        if os.environ.get("CI"):
            pytest.fail("Xvfb is missing; .ci/run installs it")
        pytest.skip("Xvfb is not installed (Debian package xvfb)")
    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-nolisten", "tcp"], pass_fds=(write_end,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    started = time.monotonic()
    with os.fdopen(read_end) as pipe:
        display = pipe.readline().strip()
    assert display, "Xvfb did not report its display number"
    monkeypatch.setenv("DISPLAY", f":{display}")
    yield started
    server.terminate()
    server.wait(timeout=10)


def test_x11_idle_time_comes_from_the_display(xvfb: float) -> None:
    time.sleep(0.5)

    idle = linux_session.x11_idle_seconds()

    assert idle is not None
    assert 0.4 <= idle <= time.monotonic() - xvfb + 0.1  # nobody has touched it since it started


def test_x11_gives_nothing_without_a_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)

    assert linux_session.x11_idle_seconds() is None


def test_without_logind_a_helper_falls_back_to_x11_and_cannot_tell_a_lock(
        xvfb: float, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_SESSION_ID", raising=False)

    idle, locked = linux_session.read_state()

    assert idle is not None and idle < time.monotonic() - xvfb + 0.1
    assert locked is False
