"""OS backends, and the one place that asks which OS this is.

Everything that differs between Linux, Windows and macOS lives in this package; the rest of the
agent asks :func:`current` for the backend and never looks at ``sys.platform`` itself.
"""

from __future__ import annotations

import sys
from functools import cache
from types import ModuleType

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the session helper imports this package
if TYPE_CHECKING:
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
    return backend  # type: ignore[return-value]  # the module is the Backend


def session_side() -> ModuleType:
    """What the session helper needs of this OS: ``DEFAULT_ADDRESS``, ``connect(address)`` and
    ``read_state()`` (idle seconds and lock state, from inside the user's session)."""
    if sys.platform.startswith("linux"):
        from agent.platform import linux_session as side
    elif sys.platform == "win32":
        from agent.platform import windows_session as side
    elif sys.platform == "darwin":
        from agent.platform import macos_session as side
    else:
        raise UnsupportedPlatform(f"no Caretaker session helper for {sys.platform!r}")
    return side
