"""The transition table, exhaustively: every allowed move succeeds, every other is refused and says why."""

import itertools
from datetime import date

import pytest

from controller.lifecycle.evidence import Evidence, completeness, missing_for, retain_until
from controller.lifecycle.states import ALLOWED, Outcome, Refused, State, check_move, parse_state

ALL_PAIRS = list(itertools.product(State, State))
ALLOWED_PAIRS = [(a, b) for a, b in ALL_PAIRS if b in ALLOWED[a]]
REFUSED_PAIRS = [(a, b) for a, b in ALL_PAIRS if b not in ALLOWED[a]]


def test_the_table_is_the_documented_lifecycle():
    assert ALLOWED_PAIRS == [
        (State.IN_STOCK, State.DEPLOYED), (State.IN_STOCK, State.RETIRED),
        (State.DEPLOYED, State.IN_STOCK), (State.DEPLOYED, State.IN_REPAIR), (State.DEPLOYED, State.RETIRED),
        (State.IN_REPAIR, State.IN_STOCK), (State.IN_REPAIR, State.REDEPLOYED), (State.IN_REPAIR, State.RETIRED),
        (State.REDEPLOYED, State.IN_STOCK), (State.REDEPLOYED, State.IN_REPAIR), (State.REDEPLOYED, State.RETIRED),
        (State.RETIRED, State.REDEPLOYED), (State.RETIRED, State.AWAITING_DISPOSAL),
        (State.AWAITING_DISPOSAL, State.SANITISED),
        (State.SANITISED, State.DISPOSED),
    ]


@pytest.mark.parametrize(("current", "target"), ALLOWED_PAIRS, ids=lambda s: s.value)
def test_every_allowed_move_succeeds(current, target):
    outcome = Outcome.RECYCLED if target is State.DISPOSED else None
    check_move(current, target, outcome, [])


@pytest.mark.parametrize(("current", "target"), REFUSED_PAIRS, ids=lambda s: s.value)
def test_every_other_move_is_refused_with_the_moves_that_are_allowed(current, target):
    with pytest.raises(Refused) as refused:
        check_move(current, target, Outcome.RECYCLED if target is State.DISPOSED else None, [])
    message = str(refused.value)
    assert message.startswith(f"cannot move from {current} to {target}; from {current} a device may go to ")
    if current is State.DISPOSED:
        assert message.endswith("nothing (it is final)")
    else:
        assert all(allowed.value in message for allowed in ALLOWED[current])


def test_disposal_needs_an_outcome_and_only_disposal_takes_one():
    with pytest.raises(Refused, match="disposal needs an outcome: recycled, donated, resold, returned_to_lessor"):
        check_move(State.SANITISED, State.DISPOSED, None, [])
    with pytest.raises(Refused, match="an outcome is only given when a device is disposed"):
        check_move(State.DEPLOYED, State.RETIRED, Outcome.DONATED, [])


def test_a_device_cannot_be_disposed_without_complete_evidence():
    partial = Evidence(method="purge", certificate_ref="ADISA-CERT-7781", transfer_note_ref="WTN-2026-114")
    missing = missing_for(State.DISPOSED, partial)
    assert missing == ["sanitised_on", "carrier", "recycler", "accreditation", "collected_on"]
    with pytest.raises(Refused, match="cannot move to disposed without disposal evidence: missing sanitised_on, "
                                      "carrier, recycler, accreditation, collected_on"):
        check_move(State.SANITISED, State.DISPOSED, Outcome.RECYCLED, missing)


def test_sanitisation_needs_only_its_own_evidence_and_service_moves_need_none():
    assert missing_for(State.SANITISED, Evidence()) == ["method", "certificate_ref", "sanitised_on"]
    assert all(missing_for(s, Evidence()) == [] for s in State if s not in (State.SANITISED, State.DISPOSED))


def test_newer_evidence_fills_and_replaces_but_empty_fields_do_not_erase():
    old = Evidence(method="clear", certificate_ref="C-1", carrier="Green Waste Ltd")
    new = Evidence(method="purge", certificate_ref="", recycler="ReTech")
    assert old.merged(new) == Evidence(method="purge", certificate_ref="C-1", carrier="Green Waste Ltd",
                                       recycler="ReTech")
    assert completeness(old.merged(new)) == (4, 8)


def test_transfer_notes_are_kept_two_years_from_collection_even_from_a_leap_day():
    assert retain_until(date(2026, 11, 20)).isoformat() == "2028-11-20"
    assert retain_until(date(2028, 2, 29)).isoformat() == "2030-02-28"


def test_states_are_read_the_way_people_type_them():
    assert parse_state("Awaiting disposal") is State.AWAITING_DISPOSAL
    assert parse_state("in-repair") is State.IN_REPAIR
    with pytest.raises(Refused, match="unknown state 'binned'; states are in_stock, deployed"):
        parse_state("binned")
