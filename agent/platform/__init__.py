"""OS backends, and the one place that asks which OS this is.

Everything that differs between Linux, Windows and macOS lives in this package; the rest of the
agent asks :func:`current` for the backend and never looks at ``sys.platform`` itself.
"""

from __future__ import annotations

import importlib
import sys
from functools import cache
from types import ModuleType

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the session helper imports this package
if TYPE_CHECKING:
    from agent.platform.base import Backend


class UnsupportedPlatform(RuntimeError):
    """The agent has no backend for this operating system."""


_FAMILIES = {"win32": "windows", "darwin": "macos"}  # sys.platform values; "linux…" is linux


def module_for(part: str, platform: str = sys.platform) -> ModuleType | None:
    """This package's module for ``part`` on ``platform`` (a ``sys.platform`` value): ``linux_<part>``,
    ``windows_<part>`` or ``macos_<part>`` (``part`` empty: the backend itself), imported on first use so no
    OS loads another's modules; None on an OS the agent has none for. Any OS's can be asked for, so tests
    cover all three."""
    family = "linux" if platform.startswith("linux") else _FAMILIES.get(platform)
    if family is None:
        return None
    return importlib.import_module(f"agent.platform.{family}_{part}" if part else f"agent.platform.{family}")


@cache
def current() -> Backend:
    """The backend for the running OS."""
    backend = module_for("")
    if backend is None:
        raise UnsupportedPlatform(f"no Caretaker backend for {sys.platform!r}")
    return backend  # type: ignore[return-value]  # the module is the Backend


def session_side() -> ModuleType:
    """What the session helper needs of this OS: ``DEFAULT_ADDRESS``, ``connect(address)`` and
    ``read_state()`` (idle seconds and lock state, from inside the user's session)."""
    side = module_for("session")
    if side is None:
        raise UnsupportedPlatform(f"no Caretaker session helper for {sys.platform!r}")
    return side
