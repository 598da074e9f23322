"""Moves against the database: audited in one transaction, guarded by evidence, batches sharing a note."""

from datetime import date

import pytest
from sqlmodel import select

from controller.db import session_scope
from controller.lifecycle import service
from controller.lifecycle.evidence import Evidence
from controller.lifecycle.models import Asset, DisposalEvidence, Transition
from controller.lifecycle.states import ALLOWED, Outcome, Refused, State
from controller.register.devices import create_device
from controller.register.models import ChangeRecord, Site
from tests.controller.lifecycle.conftest import add_device
from tests.factories import inventory

FULL = Evidence(method="purge", certificate_ref="ADISA-CERT-7781", sanitised_on=date(2026, 11, 2),
                transfer_note_ref="WTN-2026-114", carrier="Green Waste Ltd", recycler="ReTech UK",
                accreditation="ADISA ADC 8.0", collected_on=date(2026, 11, 20))


def test_a_device_an_agent_reports_enters_the_register_as_deployed(engine, hill):
    with session_scope(engine) as session:
        device = create_device(session, session.get(Site, hill), inventory(), "agent:a1")
    with session_scope(engine) as session:
        assert session.get(Asset, device.id).state == "deployed"
        assert [(h.from_state, h.to_state, h.actor, h.reason) for h in service.history(session, str(device.id))] == [
            (None, "deployed", "agent:a1", "reported by its agent")]


def test_every_allowed_move_succeeds_in_the_database_and_is_audited(engine, hill):
    pairs = [(a, b) for a in State for b in sorted(ALLOWED[a])]
    with session_scope(engine) as session:
        site = session.get(Site, hill)
        ids = {pair: add_device(session, site, f"PC{i:02d}", pair[0]).id for i, pair in enumerate(pairs)}
        for (current, target), device_id in ids.items():
            outcome = Outcome.DONATED if target is State.DISPOSED else None
            service.move(session, str(device_id), target, f"test {current}→{target}", "cli:alice", outcome, FULL)
    with session_scope(engine) as session:
        for (current, target), device_id in ids.items():
            assert session.get(Asset, device_id).state == target.value
            moves = session.exec(select(Transition).where(Transition.device_id == device_id)).all()
            assert [(t.from_state, t.to_state, t.actor) for t in moves] == [(current, target, "cli:alice")]
        logged = session.exec(select(ChangeRecord).where(ChangeRecord.action == "lifecycle.move")).all()
        assert len(logged) == len(pairs)


def test_a_refused_move_writes_nothing_not_even_the_evidence_given_with_it(engine, hill):
    with session_scope(engine) as session:
        device_id = add_device(session, session.get(Site, hill), "PC01", State.AWAITING_DISPOSAL).id
    with (
        pytest.raises(Refused, match="cannot move from awaiting_disposal to disposed"),
        session_scope(engine) as session,
    ):
        service.move(session, "PC01", State.DISPOSED, "skip the wipe", "cli:alice", Outcome.RECYCLED, FULL)
    with session_scope(engine) as session:
        assert session.get(Asset, device_id).state == "awaiting_disposal"
        assert session.get(DisposalEvidence, device_id) is None
        assert session.exec(select(Transition)).all() == []
        assert session.exec(select(ChangeRecord)).all() == []


def test_a_device_cannot_reach_disposed_without_complete_evidence(engine, hill):
    with session_scope(engine) as session:
        add_device(session, session.get(Site, hill), "PC01", State.AWAITING_DISPOSAL, serial="SN-1")
        service.move(session, "SN-1", State.SANITISED, "wiped by the recycler", "cli:alice",
                     evidence=Evidence(method="recycler_certificate", certificate_ref="RC-55",
                                       sanitised_on=date(2026, 11, 2)))
    with (
        pytest.raises(Refused, match="missing transfer_note_ref, carrier, recycler, accreditation, collected_on"),
        session_scope(engine) as session,
    ):
        service.move(session, "SN-1", State.DISPOSED, "collected", "cli:alice", Outcome.RECYCLED)
    with session_scope(engine) as session:
        service.move(session, "SN-1", State.DISPOSED, "collected", "cli:alice", Outcome.RECYCLED,
                     Evidence(transfer_note_ref="WTN-9", carrier="Green Waste Ltd", recycler="ReTech UK",
                              accreditation="ADISA", collected_on=date(2026, 11, 20)), on=date(2026, 11, 21))
    with session_scope(engine) as session:
        asset = session.get(Asset, 1)
        assert (asset.state, asset.outcome, asset.disposed_on) == ("disposed", "recycled", date(2026, 11, 21))
        assert session.get(DisposalEvidence, 1).retain_until == date(2028, 11, 20)


def test_a_pallet_shares_one_transfer_note_and_is_kept_two_years(engine, hill):
    with session_scope(engine) as session:
        site = session.get(Site, hill)
        for i in range(40):
            add_device(session, site, f"LAPTOP{i:02d}", State.RETIRED)
        batch = service.create_batch(session, "pallet-1", "WTN-2026-114", "Green Waste Ltd", "ReTech UK",
                                     "ADISA ADC 8.0", date(2026, 11, 20), "cli:alice")
        assert batch.retain_until == date(2028, 11, 20)
        service.add_to_batch(session, "pallet-1", [f"LAPTOP{i:02d}" for i in range(40)], "cli:alice")
    with session_scope(engine) as session:
        for i in range(40):
            ref = f"LAPTOP{i:02d}"
            service.move(session, ref, State.AWAITING_DISPOSAL, "end of life", "cli:alice")
            service.move(session, ref, State.SANITISED, "wiped", "cli:alice",
                         evidence=Evidence(method="destroy", certificate_ref=f"DESTRUCT-{i}",
                                           sanitised_on=date(2026, 11, 20)))
            result = service.move(session, ref, State.DISPOSED, "collected", "cli:alice", Outcome.RECYCLED)
            assert result.to_state == "disposed"
    with session_scope(engine) as session:
        assert len(service.batch_view(session, "pallet-1").devices) == 40
        assert {a.state for a in session.exec(select(Asset)).all()} == {"disposed"}


def test_only_devices_out_of_service_join_a_disposal_batch(engine, hill):
    with session_scope(engine) as session:
        add_device(session, session.get(Site, hill), "PC01", State.DEPLOYED)
        service.create_batch(session, "pallet-1", "WTN-1", "C", "R", "ADISA", date(2026, 11, 20), "cli:alice")
    with (
        pytest.raises(Refused, match="PC01 is deployed; only retired devices not yet disposed join"),
        session_scope(engine) as session,
    ):
        service.add_to_batch(session, "pallet-1", ["PC01"], "cli:alice")
    with pytest.raises(Refused, match="already exists"), session_scope(engine) as session:
        service.create_batch(session, "pallet-1", "WTN-2", "C", "R", "ADISA", date(2026, 11, 20), "cli:alice")


def test_devices_are_found_by_id_asset_tag_serial_or_hostname_and_ambiguity_is_refused(engine, hill):
    with session_scope(engine) as session:
        site = session.get(Site, hill)
        add_device(session, site, "PC01", serial="SN-1")
        add_device(session, site, "pc01", serial="SN-2")
        session.get(Asset, 2).asset_tag = "HILL-0002"
    with session_scope(engine) as session:
        assert service.find_device(session, "1").serial == "SN-1"
        assert service.find_device(session, "HILL-0002").id == 2
        assert service.find_device(session, "SN-1").id == 1
        with pytest.raises(service.NotFound, match="2 devices answer to 'PC01': give the id \\(1, 2\\)"):
            service.find_device(session, "PC01")
        with pytest.raises(service.NotFound):
            service.find_device(session, "nope")


def test_a_move_needs_a_reason(engine, hill):
    with session_scope(engine) as session:
        add_device(session, session.get(Site, hill), "PC01")
        with pytest.raises(Refused, match="a move needs a reason"):
            service.move(session, "PC01", State.IN_REPAIR, "  ", "cli:alice")
