"""Running an OS tool and getting its output, or nothing.

Inventory tools (loginctl, ioreg, PowerShell) are missing, slow or broken on some machines; a
collector must then report "unknown", never crash the agent or hang its report loop.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence

DEFAULT_TIMEOUT_SECONDS = 20.0


def run(args: Sequence[str], timeout: float = DEFAULT_TIMEOUT_SECONDS, creationflags: int = 0,
        env: Mapping[str, str] | None = None) -> str | None:
    """stdout of ``args`` if it ran and exited 0, else None; ``env`` replaces the environment when given."""
    try:
        completed = subprocess.run(list(args), capture_output=True, text=True, encoding="utf-8",
                                   errors="replace", timeout=timeout, check=False,
                                   stdin=subprocess.DEVNULL, creationflags=creationflags,
                                   env=dict(env) if env is not None else None)
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout if completed.returncode == 0 else None
