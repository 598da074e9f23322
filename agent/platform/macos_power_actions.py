"""macOS: ``pmset`` to sleep, ``shutdown`` to halt.

macOS has no "hibernate now": ``pmset sleepnow`` sleeps and the Mac's own standby settings decide
when memory goes to disk, so hibernate is carried out as sleep.
"""

from __future__ import annotations

from agent.platform.power_actions import Verb

COMMANDS = {Verb.SHUTDOWN: ["shutdown", "-h", "now"], Verb.SLEEP: ["pmset", "sleepnow"],
            Verb.HIBERNATE: ["pmset", "sleepnow"]}


def power_command(verb: Verb, message: str) -> list[str]:
    return list(COMMANDS[verb])
