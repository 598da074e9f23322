"""The warning window: its countdown and Postpone button drawn by tkinter on a real X server (Xvfb), and
what happens where nothing can draw it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from agent.session import dialog

MESSAGE = "This computer will shut down in 10 minutes (school power policy)."


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; .ci/run and .ci/setup-session-helper.sh install what the dialog tests need")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """One X server for the module: Tk keeps its connection to a display for the life of the process,
    so the server must outlive every window drawn here."""
    if not shutil.which("Xvfb"):
        unavailable("Xvfb is not installed (Debian package xvfb)")
    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-nolisten", "tcp"], pass_fds=(write_end,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        yield f":{pipe.readline().strip()}"
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def tk(display: str, monkeypatch: pytest.MonkeyPatch) -> object:
    try:
        import tkinter
    except ImportError:
        unavailable("this Python has no tkinter (Debian package python3-tk)")
    monkeypatch.setenv("DISPLAY", display)
    return tkinter


def test_the_countdown_reads_as_minutes_and_seconds_left():
    assert [dialog.countdown_text(s) for s in (600, 65, 9, 0, -3)] == [
        "10:00 left", "1:05 left", "0:09 left", "0:00 left", "0:00 left"]


def test_pressing_postpone_answers_postpone_and_closes_the_window(tk):
    window = dialog.Window(tk, "Caretaker", MESSAGE, 600, "Postpone 10 min")
    assert window.clock.cget("text") == "10:00 left" and window.button.cget("text") == "Postpone 10 min"
    window.button.invoke()
    assert window.answer == "postpone"
    with pytest.raises(tk.TclError):
        window.root.winfo_exists()  # destroyed


def test_without_a_postponement_left_there_is_no_button_and_the_countdown_closes_it(tk):
    window = dialog.Window(tk, "Caretaker", MESSAGE, 2, "")
    assert window.button is None
    window.root.after(3500, window.root.destroy)  # a guard: the countdown must close it first
    window.root.mainloop()
    assert window.answer == ""


def test_the_window_runs_as_its_own_process_and_closes_itself_when_time_is_up(tk):
    done = subprocess.run([sys.executable, "-m", "agent.session.dialog", "--title", "Caretaker", "--message", MESSAGE,
                           "--seconds", "1", "--postpone-label", "Postpone 10 min"],
                          capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout) == (0, "")


def test_with_no_display_and_no_notification_service_it_says_it_cannot_show_anything(tmp_path):
    env = {"PATH": str(tmp_path), "PYTHONPATH": os.pathsep.join(sys.path)}  # no DISPLAY, no notify-send
    done = subprocess.run([sys.executable, "-m", "agent.session.dialog", "--title", "Caretaker", "--message", MESSAGE,
                           "--seconds", "5"], capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 3
    assert done.stderr.strip() == ("caretaker-agent dialog: neither tkinter nor the system's own dialog can show "
                                   "a warning here")
