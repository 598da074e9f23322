"""OS backends, and the one place that asks which OS this is.

Everything that differs between Linux, Windows and macOS lives in this package; the rest of the
agent asks :func:`current` for the backend and never looks at ``sys.platform`` itself.
"""

from __future__ import annotations

import sys
from functools import cache
from typing import cast

from agent.platform.base import Backend


class UnsupportedPlatform(RuntimeError):
    """The agent has no backend for this operating system."""


@cache
def current() -> Backend:
    """The backend for the running OS, imported on first use so no OS loads another's modules."""
    if sys.platform.startswith("linux"):
        from agent.platform import linux as backend
    elif sys.platform == "win32":
        from agent.platform import windows as backend
    elif sys.platform == "darwin":
        from agent.platform import macos as backend
    else:
        raise UnsupportedPlatform(f"no Caretaker backend for {sys.platform!r}")
    return cast(Backend, backend)
