"""``caretaker-agent session-helper``: the agent's eyes and voice inside one user's session.

Started at sign-in for every user (a Task Scheduler logon task on Windows, a LaunchAgent on macOS,
an XDG autostart entry on Linux desktops), it connects to the agent service, reports the session's
idle seconds and lock state as often as the service asks, and shows the service's power-down warning
with its countdown and a Postpone button. It runs with the user's rights, holds no credentials and
can change nothing but what the service hears about its own session: the service knows from the OS
which user (and on Windows which session) it is.

It stays small (at most 15 MiB): no psutil, no logging, no dataclasses, and the warning window runs
as a separate short-lived process (``agent.session.dialog``) only while a warning is on screen.
When the service is away (not started yet, restarting) it tries again, more slowly each time.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from agent.entry import helper_options
from agent.session import wire

RETRY_SECONDS = (2, 5, 10, 30, 60)
HELLO_TIMEOUT_SECONDS = 10.0
DIALOG_COMMAND = (sys.executable, "-m", "agent.session.dialog")


def say(message: str) -> None:
    """One line on stderr, where there is one (pythonw.exe, which Windows starts it with, has none)."""
    if sys.stderr is not None:
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} caretaker-agent session-helper {message}", file=sys.stderr,
              flush=True)


class Dialog:
    """The warning window on screen, as a child process; at most one at a time."""

    def __init__(self, command: list[str], send: Callable[[dict], bool]) -> None:
        self._command = command
        self._send = send
        self._lock = threading.Lock()
        self._shown: tuple[str, subprocess.Popen] | None = None

    def show(self, warning: dict) -> None:
        label = f"Postpone {warning['postpone_minutes']} min" if warning["postponements_left"] > 0 else ""
        argv = [*self._command, "--title", warning["title"], "--message", warning["message"],
                "--seconds", str(int(warning["seconds"])), "--postpone-label", label]
        self.close()
        try:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        except OSError as exc:
            say(f"cannot show the warning ({exc})")
            return
        with self._lock:
            self._shown = (warning["id"], process)
        threading.Thread(target=self._answer, args=(warning["id"], process), daemon=True).start()

    def _answer(self, warning_id: str, process: subprocess.Popen) -> None:
        chosen, _ = process.communicate()
        with self._lock:
            current = self._shown is not None and self._shown[1] is process
            if current:
                self._shown = None
        if current and "postpone" in (chosen or "").split():
            self._send(wire.postpone(warning_id))

    def close(self, warning_id: str | None = None) -> None:
        """Take the window down (only if it shows ``warning_id``, when given)."""
        with self._lock:
            shown = self._shown
            if shown is None or (warning_id is not None and shown[0] != warning_id):
                return
            self._shown = None
        shown[1].terminate()


class Helper:
    def __init__(self, side: object, address: str, dialog_command: list[str]) -> None:
        self._side = side
        self._address = address
        self._stopping = threading.Event()
        self._connection = None
        self._sending = threading.Lock()
        self._dialog = Dialog(dialog_command, self._send)

    def stop(self) -> None:
        self._stopping.set()
        connection = self._connection
        if connection is not None:
            connection.close()
        self._dialog.close()

    def run(self) -> int:
        failures = 0
        while not self._stopping.is_set():
            try:
                connection = self._side.connect(self._address)
            except OSError as exc:
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                if failures == 0:
                    say(f"cannot reach the agent at {self._address} ({exc}); trying again")
                failures += 1
                self._stopping.wait(delay)
                continue
            failures = 0
            self._serve(connection)
            self._dialog.close()
            self._stopping.wait(RETRY_SECONDS[0])
        return 0

    def _serve(self, connection: object) -> None:
        self._connection = connection
        lost = threading.Event()
        try:
            hello = wire.decode(self._greeting(connection), wire.Kind.HELLO)
        except (OSError, wire.WireError) as exc:
            say(f"the agent did not greet as expected ({exc})")
            connection.close()
            return
        every = hello["every_seconds"]
        threading.Thread(target=self._listen, args=(connection, lost), daemon=True).start()
        while not (lost.is_set() or self._stopping.is_set()):
            try:
                idle, locked = self._side.read_state()
            except OSError:
                idle, locked = None, False
            if not self._send(wire.state(idle, locked)):
                break
            lost.wait(every)
        connection.close()
        self._connection = None

    def _greeting(self, connection: object) -> bytes:
        """The service's hello, which must come within HELLO_TIMEOUT_SECONDS: a silent peer is not the agent."""
        timer = threading.Timer(HELLO_TIMEOUT_SECONDS, connection.close)
        timer.start()
        try:
            return connection.read_line(wire.MAX_LINE + 1)
        finally:
            timer.cancel()

    def _listen(self, connection: object, lost: threading.Event) -> None:
        try:
            while True:
                line = connection.read_line(wire.MAX_LINE + 1)
                if not line:
                    break
                message = wire.decode(line, wire.Kind.WARNING, wire.Kind.WITHDRAW)
                if message["type"] == wire.Kind.WARNING:
                    self._dialog.show(message)
                else:
                    self._dialog.close(message["id"])
        except (OSError, wire.WireError) as exc:
            say(f"the agent's channel failed ({exc})")
        finally:
            lost.set()

    def _send(self, message: dict) -> bool:
        connection = self._connection
        if connection is None:
            return False
        try:
            with self._sending:
                connection.write(wire.encode(message))
        except OSError:
            return False
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="caretaker-agent session-helper", parents=[helper_options()],
                                     description="Tell the Caretaker agent about this session and show its "
                                                 "power-down warnings. Started at sign-in; runs as the user.")
    args = parser.parse_args(argv)
    from agent import platform

    side = platform.session_side()
    dialog = shlex.split(args.dialog_command) if args.dialog_command else list(DIALOG_COMMAND)
    helper = Helper(side, args.session_address or side.DEFAULT_ADDRESS, dialog)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: helper.stop())
    return helper.run()
