"""What proves a device left lawfully: how its data was destroyed, and where the hardware went.

Sanitisation (NIST SP 800-88 clear / purge / destroy, or the recycler's certificate) must be recorded
before ``sanitised``; the WEEE waste transfer note, carrier and an accredited recycler (e.g. ADISA)
before ``disposed``. A batch supplies the transfer-note fields to every device collected with it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields, replace
from datetime import date

from controller.lifecycle.states import Refused, State


class Sanitisation(enum.StrEnum):
    CLEAR = "clear"
    PURGE = "purge"
    DESTROY = "destroy"
    RECYCLER_CERTIFICATE = "recycler_certificate"


@dataclass(frozen=True)
class Evidence:
    method: str | None = None
    certificate_ref: str | None = None
    sanitised_on: date | None = None
    transfer_note_ref: str | None = None
    carrier: str | None = None
    recycler: str | None = None
    accreditation: str | None = None
    collected_on: date | None = None

    def merged(self, newer: Evidence) -> Evidence:
        """This evidence with every field ``newer`` gives replacing the old one."""
        return replace(self, **{f.name: getattr(newer, f.name) for f in fields(newer)
                                if getattr(newer, f.name) not in (None, "")})


SANITISATION_FIELDS = ("method", "certificate_ref", "sanitised_on")
TRANSFER_FIELDS = ("transfer_note_ref", "carrier", "recycler", "accreditation", "collected_on")
REQUIRED: dict[State, tuple[str, ...]] = {
    State.SANITISED: SANITISATION_FIELDS,
    State.DISPOSED: SANITISATION_FIELDS + TRANSFER_FIELDS,
}


def missing_for(target: State, evidence: Evidence) -> list[str]:
    return [name for name in REQUIRED.get(target, ()) if getattr(evidence, name) in (None, "")]


def completeness(evidence: Evidence) -> tuple[int, int]:
    """(fields present, fields required) for a device that has left or is leaving service."""
    required = REQUIRED[State.DISPOSED]
    return sum(getattr(evidence, n) not in (None, "") for n in required), len(required)


def retain_until(collected_on: date) -> date:
    """The last day the transfer note must be kept: two years after collection."""
    try:
        return collected_on.replace(year=collected_on.year + 2)
    except ValueError:  # 29 February
        return collected_on.replace(year=collected_on.year + 2, day=28)


def check_method(text: str) -> str:
    value = text.strip().lower().replace(" ", "_").replace("-", "_")
    try:
        return Sanitisation(value).value
    except ValueError:
        raise Refused(f"unknown sanitisation method {text!r}; methods are {', '.join(Sanitisation)}") from None
