"""Reading systemd unit files the way systemd does, enough for tests to run what a unit would run."""

from __future__ import annotations

import shlex
from collections import defaultdict


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections of settings; a setting may repeat (ExecStartPre), so each holds every value in order."""
    sections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        sections[section][key.strip()].append(value.strip())
    return sections


def command_line(value: str) -> tuple[bool, list[str]]:
    """An Exec*= value as (runs with full privileges, argv): "+" is systemd's prefix for the former."""
    privileged = value.startswith("+")
    return privileged, shlex.split(value.lstrip("+-@:!"))
