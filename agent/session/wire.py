"""The messages between the agent service and a session helper: one JSON object per line, each way.

Helper → service:
    {"type": "state", "idle_seconds": 12.5, "locked": false}    every ``every_seconds``
        (idle_seconds null: nothing in this session can tell)
    {"type": "postpone", "warning": "<id>"}                     the person pressed Postpone
Service → helper:
    {"type": "hello", "version": 1, "every_seconds": 15}
    {"type": "warning", "id": "<id>", "title": "…", "message": "…", "seconds": 600,
     "postpone_minutes": 10, "postponements_left": 2}
    {"type": "withdraw", "id": "<id>"}

Both sides check every message exactly (its keys, their types and ranges) and drop a connection that
sends anything else: the service trusts a helper for idle seconds, lock state and a Postpone press,
nothing more. The helper imports this module, so it uses neither dataclasses nor logging: a helper
runs in every session and must stay within 15 MiB.
"""

from __future__ import annotations

import enum
import json
import math

VERSION = 1
MAX_LINE = 2048  # bytes, newline included; a longer line ends the connection
MAX_IDLE_SECONDS = 366 * 86_400
MAX_WARNING_SECONDS = 24 * 3600
MAX_ID = 64
MAX_TEXT = 500


class Kind(enum.StrEnum):
    HELLO = "hello"
    STATE = "state"
    POSTPONE = "postpone"
    WARNING = "warning"
    WITHDRAW = "withdraw"


class WireError(ValueError):
    """A line that is not a valid message; whoever sent it is not trusted further."""


def encode(message: dict) -> bytes:
    line = json.dumps(message, separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"
    if len(line) > MAX_LINE:
        raise WireError(f"a {message.get('type')} message of {len(line)} bytes is longer than {MAX_LINE}")
    return line


def decode(line: bytes, *allowed: Kind) -> dict:
    """The message on ``line``, if it is one of the ``allowed`` kinds with exactly the right fields."""
    if len(line) > MAX_LINE or not line.endswith(b"\n"):
        raise WireError(f"a line longer than {MAX_LINE} bytes, or cut short")
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        raise WireError("a line that is not JSON") from None
    if not isinstance(message, dict) or message.get("type") not in allowed:
        raise WireError(f"not a {' or '.join(allowed)} message")
    kind = Kind(message["type"])
    expected = set(_FIELDS[kind]) | {"type"}
    if set(message) != expected:
        raise WireError(f"a {kind} message needs exactly the fields {sorted(expected)}")
    for name, check in _FIELDS[kind].items():
        if not check(message[name]):
            raise WireError(f"{kind}.{name} is not valid: {message[name]!r}"[:200])
    return message


def hello(every_seconds: float) -> dict:
    return {"type": Kind.HELLO.value, "version": VERSION, "every_seconds": every_seconds}


def state(idle_seconds: float | None, locked: bool) -> dict:
    return {"type": Kind.STATE.value, "idle_seconds": idle_seconds, "locked": locked}


def postpone(warning: str) -> dict:
    return {"type": Kind.POSTPONE.value, "warning": warning}


def warning(id: str, title: str, message: str, seconds: float, postpone_minutes: int,
            postponements_left: int) -> dict:
    return {"type": Kind.WARNING.value, "id": id, "title": title, "message": message, "seconds": seconds,
            "postpone_minutes": postpone_minutes, "postponements_left": postponements_left}


def withdraw(id: str) -> dict:
    return {"type": Kind.WITHDRAW.value, "id": id}


def _number(low: float, high: float):
    def check(value: object) -> bool:
        return (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
                and low <= value <= high)
    return check


def _count(high: int):
    def check(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= high
    return check


def _text(limit: int):
    def check(value: object) -> bool:
        return isinstance(value, str) and 0 < len(value) <= limit and value.isprintable()
    return check


def _idle(value: object) -> bool:
    return value is None or _number(0, MAX_IDLE_SECONDS)(value)


_FIELDS = {
    Kind.HELLO: {"version": lambda v: v == VERSION, "every_seconds": _number(0.1, 3600)},
    Kind.STATE: {"idle_seconds": _idle, "locked": lambda v: isinstance(v, bool)},
    Kind.POSTPONE: {"warning": _text(MAX_ID)},
    Kind.WARNING: {"id": _text(MAX_ID), "title": _text(MAX_TEXT), "message": _text(MAX_TEXT),
                   "seconds": _number(0, MAX_WARNING_SECONDS), "postpone_minutes": _count(24 * 60),
                   "postponements_left": _count(100)},
    Kind.WITHDRAW: {"id": _text(MAX_ID)},
}
