"""Seconds since input on Linux: logind's answer from captured loginctl output, X11 from a real Xvfb,
and terminal access times from a fixture /dev."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.platform import linux_idle

from .conftest import FIXTURES

LOGINCTL = FIXTURES / "linux" / "loginctl"
NOW_US = 9_015_412_345  # CLOCK_MONOTONIC at the moment the captured output is evaluated


def sessions(machine: str) -> list[dict[str, str]]:
    return linux_idle.parse_show_session((LOGINCTL / machine / "show-session.txt").read_text())


@pytest.mark.parametrize(("machine", "ids"), [
    ("gnome-desktop-idle", ("2", "c1")),
    ("lab-pc-in-use", ("3", "17")),
    ("systemd-256-two-idle-users", ("4", "9", "c2")),
    ("login-screen", ("c1",)),
])
def test_session_ids_from_list_sessions_of_any_systemd_version(machine: str, ids: tuple[str, ...]) -> None:
    assert linux_idle.parse_session_ids((LOGINCTL / machine / "list-sessions.txt").read_text()) == ids


@pytest.mark.parametrize(("machine", "idle_seconds"), [
    pytest.param("gnome-desktop-idle", 900.0, id="one user idle for 15 minutes; the greeter is nobody"),
    pytest.param("lab-pc-in-use", 0.0, id="a session without the idle hint is in use"),
    pytest.param("systemd-256-two-idle-users", 180.0, id="the least idle of two users"),
    pytest.param("login-screen", None, id="only the login screen"),
    pytest.param("idle-without-timestamp", None, id="idle since an unknown time"),
])
def test_logind_idle_seconds(machine: str, idle_seconds: float | None) -> None:
    assert linux_idle.logind_idle_seconds(sessions(machine), NOW_US) == idle_seconds


def test_show_session_blocks_keep_their_properties_apart() -> None:
    parsed = sessions("gnome-desktop-idle")

    assert parsed == [{"Id": "2", "IdleHint": "yes", "IdleSinceHintMonotonic": "8115412345", "Class": "user"},
                      {"Id": "c1", "IdleHint": "no", "IdleSinceHintMonotonic": "0", "Class": "greeter"}]


def test_tty_idle_is_the_most_recently_used_terminal(tmp_path: Path) -> None:
    now = time.time()
    (tmp_path / "dev/pts").mkdir(parents=True)
    for terminal, seconds_ago in (("tty2", 3600), ("pts/0", 42)):
        (tmp_path / "dev" / terminal).touch()
        os.utime(tmp_path / "dev" / terminal, (now - seconds_ago, now - seconds_ago))

    assert linux_idle.tty_idle_seconds(tmp_path, ["tty2", "pts/0", ":0"], now) == pytest.approx(42)
    assert linux_idle.tty_idle_seconds(tmp_path, [":0"], now) is None


@pytest.fixture
def xvfb(monkeypatch: pytest.MonkeyPatch) -> Iterator[float]:
    """A real X server with the MIT-SCREEN-SAVER extension; yields when it started (monotonic)."""
    if not shutil.which("Xvfb"):
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

    idle = linux_idle.x11_idle_seconds()

    assert idle is not None
    assert 0.4 <= idle <= time.monotonic() - xvfb + 0.1  # nobody has touched it since it started


def test_x11_gives_nothing_without_a_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)

    assert linux_idle.x11_idle_seconds() is None


def test_without_logind_the_agent_falls_back_to_x11(xvfb: float) -> None:
    if linux_idle.logind_idle() is not None:
        pytest.skip("logind runs on this machine and is asked first")

    answer = linux_idle.input_idle(Path("/"))

    assert answer.source == "x11"
    assert answer.seconds is not None
