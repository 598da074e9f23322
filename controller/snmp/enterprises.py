"""Who an OID under 1.3.6.1.4.1 belongs to: the IANA private enterprise numbers as data
(``data/enterprises.yaml``, where its source is noted), for a device no profile names the maker of."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from controller.snmp import oids

ENTERPRISES = "1.3.6.1.4.1"
DATA = Path(__file__).parent / "data" / "enterprises.yaml"


@dataclass(frozen=True)
class Enterprise:
    number: int
    vendor: str
    agent: bool = False  # agent software or a chip SDK many makers ship: says nothing of the maker

    @property
    def oid(self) -> str:
        return f"{ENTERPRISES}.{self.number}"


def number_of(oid: str | None) -> int | None:
    """The enterprise number of an OID under 1.3.6.1.4.1, else None."""
    if not oid or not oids.is_under(oid, ENTERPRISES):
        return None
    return int(oid[len(ENTERPRISES) + 1:].split(".", 1)[0])


def enterprise_of(oid: str | None) -> Enterprise | None:
    """The registered enterprise an OID lies under, if Caretaker knows it."""
    number = number_of(oid)
    return _registry().get(number) if number is not None else None


@cache
def _registry() -> dict[int, Enterprise]:
    data = yaml.safe_load(DATA.read_text())
    return {int(number): Enterprise(int(number), str(entry["vendor"]), bool(entry.get("agent", False)))
            for number, entry in data.items()}
