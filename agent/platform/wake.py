"""What every OS's wake-readiness module provides, and the one choice of module by OS.

Each of linux_wake.py, windows_wake.py and macos_wake.py has pure ``parse_*`` functions over the
text its tools print (tested on captured output) and ``wake_readiness(root)``, which runs the tools.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Protocol

from agent.protocol import WakeReadiness


class WakeChecks(Protocol):
    def wake_readiness(self, root: Path) -> WakeReadiness: ...


def for_platform(platform: str = sys.platform) -> WakeChecks | None:
    """The module for ``platform`` (a ``sys.platform`` value); None where the agent has none."""
    if platform.startswith("linux"):
        from agent.platform import linux_wake as module
    elif platform == "win32":
        from agent.platform import windows_wake as module
    elif platform == "darwin":
        from agent.platform import macos_wake as module
    else:
        return None
    return module  # type: ignore[return-value]
