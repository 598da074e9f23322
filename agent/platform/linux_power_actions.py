"""Linux: power actions through logind (systemctl), warnings to each signed-in desktop and every terminal.

``systemctl poweroff|suspend|hibernate`` asks logind, which honours inhibitor locks (a running backup
or an update that took one delays the action), unlike calling the kernel directly. A desktop user sees
``notify-send`` in their own session (run as them, on their session bus); ``wall`` reaches terminals
and is the fallback where no desktop answers.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.platform.power_actions import SessionUser, Verb

COMMANDS = {Verb.SHUTDOWN: ["systemctl", "poweroff"], Verb.SLEEP: ["systemctl", "suspend"],
            Verb.HIBERNATE: ["systemctl", "hibernate"]}


def power_command(verb: Verb, message: str) -> list[str]:
    return list(COMMANDS[verb])


def warning_commands(title: str, message: str, minutes: int, users: Sequence[SessionUser]) -> list[list[str]]:
    desktop = [["runuser", "-u", user.name, "--", "env", f"DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/{user.uid}/bus",
                "notify-send", "--urgency=critical", "--app-name=Caretaker", f"--expire-time={minutes * 60_000}",
                title, message] for user in users if user.uid is not None]
    return [*desktop, ["wall", f"{title}: {message}"]]
