"""Linux: power actions through logind (systemctl).

``systemctl poweroff|suspend|hibernate`` asks logind, which honours inhibitor locks (a running backup
or an update that took one delays the action), unlike calling the kernel directly.
"""

from __future__ import annotations

from agent.platform.power_actions import Verb

COMMANDS = {Verb.SHUTDOWN: ["systemctl", "poweroff"], Verb.SLEEP: ["systemctl", "suspend"],
            Verb.HIBERNATE: ["systemctl", "hibernate"]}


def power_command(verb: Verb, message: str) -> list[str]:
    return list(COMMANDS[verb])
