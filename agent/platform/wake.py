"""What every OS's wake-readiness module provides, and the one choice of module by OS.

Each of linux_wake.py, windows_wake.py and macos_wake.py has pure ``parse_*`` functions over the
text its tools print (tested on captured output) and ``wake_readiness(root)``, which runs the tools.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Protocol

from agent.platform import module_for
from agent.protocol import WakeReadiness


class WakeChecks(Protocol):
    def wake_readiness(self, root: Path) -> WakeReadiness: ...


def for_platform(platform: str = sys.platform) -> WakeChecks | None:
    """The module for ``platform`` (a ``sys.platform`` value); None where the agent has none."""
    return module_for("wake", platform)  # type: ignore[return-value]
