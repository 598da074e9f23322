"""What every OS's power-action module provides: pure functions from an action to the argv that does it.

Nothing here runs a command: the enforcer hands the argv to an injected runner, so tests assert the
exact command lines and the test machine is never powered off.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Protocol

from agent.protocol import PowerActionKind as Verb

__all__ = ["PowerActions", "SessionUser", "Verb", "for_platform"]


@dataclass(frozen=True)
class SessionUser:
    name: str
    uid: int | None = None  # None where the OS has no numeric ids (Windows) or it could not be found


class PowerActions(Protocol):
    def power_command(self, verb: Verb, message: str) -> list[str]: ...

    def warning_commands(self, title: str, message: str, minutes: int,
                         users: tuple[SessionUser, ...]) -> list[list[str]]: ...


def for_platform(platform: str = sys.platform) -> PowerActions:
    """The module for ``platform`` (a ``sys.platform`` value); any OS's can be asked for, so tests cover all three."""
    if platform.startswith("linux"):
        from agent.platform import linux_power_actions as module
    elif platform == "win32":
        from agent.platform import windows_power_actions as module
    elif platform == "darwin":
        from agent.platform import macos_power_actions as module
    else:
        raise ValueError(f"no power actions for {platform!r}")
    return module  # type: ignore[return-value]
