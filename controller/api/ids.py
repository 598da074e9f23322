"""Ids in API paths, queries and bodies, parsed strictly: ASCII digits, within the database's INTEGER.

``int("١٢")`` is 12 and ``"¹".isdigit()`` is true, pydantic reads " +5_000" as 5000, and an id past
2³¹ overflows PostgreSQL's INTEGER id columns: each of those reached a query and became a 500. Every id the
API accepts goes through :func:`parse_id` (typed as :data:`Id`), and every "id or hostname" through
:func:`check_device_reference` (typed as :data:`DeviceRef`), so a caller gets a 422 that says what
an id looks like.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from agent.protocol import MAX_ID, has_control_characters

_DIGITS = re.compile(r"[0-9]+")
_ID_RULE = f"an id is 1 to {MAX_ID} in ASCII digits"


def parse_id(value: object) -> int:
    """The id ``value`` names (a JSON integer or a string of ASCII digits), or ValueError saying why not."""
    if isinstance(value, bool):
        raise ValueError(_ID_RULE)
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value) or len(value) > len(str(MAX_ID)):
            raise ValueError(f"{value[:40]!r} is not an id: {_ID_RULE}")
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise ValueError(f"{value!r} is not an id: {_ID_RULE}")
    return value


def check_device_reference(value: str) -> str:
    """A device named by id or hostname. Whatever looks numeric to Python must be a valid id, because the
    register reads any ``str.isdigit()`` text as one; anything else is a hostname of printable text."""
    if value.isdigit() or value.isdecimal() or value.isnumeric():
        parse_id(value)
    elif value != value.strip() or not value or has_control_characters(value):
        raise ValueError("a device is named by its id or its hostname, without surrounding spaces")
    return value


Id = Annotated[int, BeforeValidator(parse_id), Field(ge=1, le=MAX_ID)]
DeviceRef = Annotated[str, AfterValidator(check_device_reference), Field(min_length=1, max_length=255)]
