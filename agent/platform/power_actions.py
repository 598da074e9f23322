"""What every OS's power-action module provides: a pure function from an action to the argv that does it.

Nothing here runs a command: the enforcer hands the argv to an injected runner, so tests assert the
exact command lines and the test machine is never powered off. Warnings are shown by the session
helper in each user's session (agent.session), not by commands.
"""

from __future__ import annotations

import sys
from typing import Protocol

from agent.platform import module_for
from agent.protocol import PowerActionKind as Verb

__all__ = ["PowerActions", "Verb", "for_platform"]


class PowerActions(Protocol):
    def power_command(self, verb: Verb, message: str) -> list[str]: ...


def for_platform(platform: str = sys.platform) -> PowerActions:
    """The module for ``platform`` (a ``sys.platform`` value); any OS's can be asked for, so tests cover all three."""
    module = module_for("power_actions", platform)
    if module is None:
        raise ValueError(f"no power actions for {platform!r}")
    return module  # type: ignore[return-value]
