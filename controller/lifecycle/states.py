"""The lifecycle states and the moves allowed between them: a table, so it can be read and tested whole.

in stock → deployed → in repair → redeployed → retired → awaiting disposal → sanitised → disposed.
A device may also go back into stock from service, or out of service from repair. Reaching ``disposed``
needs an outcome (recycled, donated, resold, returned to lessor) and complete evidence (``evidence``).
"""

from __future__ import annotations

import enum

from controller.errors import DomainError


class State(enum.StrEnum):
    IN_STOCK = "in_stock"
    DEPLOYED = "deployed"
    IN_REPAIR = "in_repair"
    REDEPLOYED = "redeployed"
    RETIRED = "retired"
    AWAITING_DISPOSAL = "awaiting_disposal"
    SANITISED = "sanitised"
    DISPOSED = "disposed"


class Outcome(enum.StrEnum):
    RECYCLED = "recycled"
    DONATED = "donated"
    RESOLD = "resold"
    RETURNED_TO_LESSOR = "returned_to_lessor"


S = State
ALLOWED: dict[State, frozenset[State]] = {
    S.IN_STOCK: frozenset({S.DEPLOYED, S.RETIRED}),
    S.DEPLOYED: frozenset({S.IN_REPAIR, S.IN_STOCK, S.RETIRED}),
    S.IN_REPAIR: frozenset({S.REDEPLOYED, S.IN_STOCK, S.RETIRED}),
    S.REDEPLOYED: frozenset({S.IN_REPAIR, S.IN_STOCK, S.RETIRED}),
    S.RETIRED: frozenset({S.AWAITING_DISPOSAL, S.REDEPLOYED}),
    S.AWAITING_DISPOSAL: frozenset({S.SANITISED}),
    S.SANITISED: frozenset({S.DISPOSED}),
    S.DISPOSED: frozenset(),
}
LEAVING = frozenset({S.AWAITING_DISPOSAL, S.SANITISED, S.DISPOSED})


class Refused(ValueError, DomainError):
    """Something a person asked for that the lifecycle rules do not allow; the message says what to do."""


def parse_state(text: str) -> State:
    value = text.strip().lower().replace(" ", "_").replace("-", "_")
    try:
        return State(value)
    except ValueError:
        raise Refused(f"unknown state {text!r}; states are {', '.join(State)}") from None


def parse_outcome(text: str) -> Outcome:
    value = text.strip().lower().replace(" ", "_").replace("-", "_")
    try:
        return Outcome(value)
    except ValueError:
        raise Refused(f"unknown outcome {text!r}; outcomes are {', '.join(Outcome)}") from None


def check_move(current: State, target: State, outcome: Outcome | None, missing_evidence: list[str]) -> None:
    """Refuse, with a sentence a person can act on, any move the table does not allow."""
    if target not in ALLOWED[current]:
        allowed = ", ".join(sorted(ALLOWED[current])) or "nothing (it is final)"
        raise Refused(f"cannot move from {current} to {target}; from {current} a device may go to {allowed}")
    if target is S.DISPOSED and outcome is None:
        raise Refused(f"disposal needs an outcome: {', '.join(Outcome)}")
    if target is not S.DISPOSED and outcome is not None:
        raise Refused("an outcome is only given when a device is disposed")
    if missing_evidence:
        raise Refused(f"cannot move to {target} without disposal evidence: missing {', '.join(missing_evidence)}")
