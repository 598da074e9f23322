"""The agent's own labels: a room and tags a site gives this machine in a small TOML file, sent with its
inventory so the controller's policies can name them (``tags = ["signage"]`` keeps a signage PC on).

    # /etc/caretaker-agent/labels.toml (written by the Ansible role from inventory group vars)
    room = "Hall"
    tags = ["signage", "exam-room"]

The controller ranks them last (after hand-set values, the asset register and its placement rules).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

MAX_TAGS = 50
MAX_LABEL = 100


class LabelsError(ValueError):
    pass


@dataclass(frozen=True)
class Labels:
    room: str | None = None
    tags: tuple[str, ...] = ()


def load_labels(path: Path | None) -> Labels:
    """The labels in ``path`` (None: no file configured, no labels); a mistake says which file and key."""
    if path is None:
        return Labels()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LabelsError(f"cannot read labels file {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LabelsError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"room", "tags"})
    if unknown:
        raise LabelsError(f"{path}: unknown key {unknown[0]!r}; a labels file has room and tags")
    room = data.get("room")
    tags = data.get("tags", [])
    if room is not None and (not isinstance(room, str) or not room.strip() or len(room) > MAX_LABEL):
        raise LabelsError(f"{path}: room must be a non-empty string of at most {MAX_LABEL} characters")
    if not isinstance(tags, list) or len(tags) > MAX_TAGS or not all(
            isinstance(t, str) and t.strip() and len(t) <= MAX_LABEL for t in tags):
        raise LabelsError(f'{path}: tags must be a list of at most {MAX_TAGS} names, e.g. tags = ["signage"]')
    return Labels(room.strip() if room else None, tuple(t.strip() for t in tags))
