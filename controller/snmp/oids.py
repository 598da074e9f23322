"""Object identifiers as dotted strings ("1.3.6.1.2.1.1.2.0"), the one spelling used across the package.

Strings keep profiles, logs and fakes readable; ordering and prefix tests go through the integer
tuple so that "1.10" sorts after "1.9" the way an agent walks it.
"""

from __future__ import annotations

import re

_OID = re.compile(r"^\d+(\.\d+)+$")
MIB_2 = "1.3.6.1.2.1"  # the standard MIBs


def normalize(oid: str) -> str:
    """Strip one leading dot and refuse anything that is not a numeric OID (profiles are checked on load)."""
    text = oid.strip().removeprefix(".")
    if not _OID.match(text):
        raise ValueError(f"{oid!r} is not a numeric OID such as 1.3.6.1.2.1.1.2.0")
    return text


def key(oid: str) -> tuple[int, ...]:
    return tuple(int(part) for part in oid.split("."))


def is_under(oid: str, prefix: str) -> bool:
    """True when ``oid`` lies strictly inside the subtree ``prefix`` (a column, a table, an enterprise)."""
    return oid.startswith(prefix + ".")


def index_of(oid: str, column: str) -> str:
    """The row index of a table cell: what follows the column OID ("1.1" for a two-part index)."""
    if not is_under(oid, column):
        raise ValueError(f"{oid} is not in column {column}")
    return oid[len(column) + 1:]


def before(oid: str) -> str:
    """An OID whose GETNEXT answers ``oid`` where it exists: its parent for a scalar (x.0), the
    previous row for a table cell (the answer must still be checked: a row of a longer index can
    lie between)."""
    head, _, last = oid.rpartition(".")
    return head if last == "0" else f"{head}.{int(last) - 1}"
