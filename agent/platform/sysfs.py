"""Reading one small sysfs or procfs attribute, where absence is normal.

Attributes come and go with hardware and kernel version, and some are root-only (DMI serials,
RAPL counters). Callers that must tell "not allowed" from "not there" read the file themselves.
"""

from __future__ import annotations

from pathlib import Path


def read(path: Path) -> str | None:
    """The attribute's text without its trailing newline; None if it is missing or unreadable."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except (OSError, ValueError):
        return None


def read_int(path: Path) -> int | None:
    text = read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
