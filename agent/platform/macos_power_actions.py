"""macOS: ``osascript`` notifications in each signed-in user's session, ``pmset`` to sleep, ``shutdown`` to halt.

The agent runs as a launchd daemon, outside every user's session, so the notification goes through
``launchctl asuser <uid>``. macOS has no "hibernate now": ``pmset sleepnow`` sleeps and the Mac's own
standby settings decide when memory goes to disk, so hibernate is carried out as sleep.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.platform.power_actions import SessionUser, Verb

COMMANDS = {Verb.SHUTDOWN: ["shutdown", "-h", "now"], Verb.SLEEP: ["pmset", "sleepnow"],
            Verb.HIBERNATE: ["pmset", "sleepnow"]}


def power_command(verb: Verb, message: str) -> list[str]:
    return list(COMMANDS[verb])


def warning_commands(title: str, message: str, minutes: int, users: Sequence[SessionUser]) -> list[list[str]]:
    script = f"display notification {_quoted(message)} with title {_quoted(title)}"
    return [["launchctl", "asuser", str(user.uid), "osascript", "-e", script] for user in users
            if user.uid is not None] or [["osascript", "-e", script]]


def _quoted(text: str) -> str:
    """An AppleScript string literal: backslashes and double quotes escaped, so a message cannot break out."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
