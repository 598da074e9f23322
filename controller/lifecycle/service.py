"""Applying the lifecycle rules to the register: entering devices, moving them, batches, history.

Every write happens in the caller's session, so a move, its evidence, its transition row and its change
record are committed together or not at all (``controller.db.session_scope``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from controller.lifecycle.entry import enter_register
from controller.lifecycle.evidence import Evidence, missing_for, retain_until
from controller.lifecycle.models import Asset, DisposalBatch, DisposalEvidence, Transition
from controller.lifecycle.states import LEAVING, Outcome, Refused, State, check_move
from controller.register import changes
from controller.register.devices import NotFound, find_device
from controller.register.models import Device, Site
from controller.timeutil import utcnow


def asset_of(session: Session, device: Device, actor: str) -> Asset:
    """The device's register entry; devices created before the lifecycle existed get one on first use."""
    asset = session.get(Asset, device.id)
    if asset is None:
        asset = enter_register(session, device, actor, reason="already in the device register")
        session.flush()
    return asset


def local_today(session: Session, device: Device) -> date:
    site = session.get(Site, device.site_id)
    return utcnow().astimezone(ZoneInfo(site.timezone if site else "Europe/London")).date()


def evidence_of(session: Session, device_id: int, batch_id: int | None) -> Evidence:
    """What is recorded for the device, with the batch's transfer note filling the fields it leaves empty."""
    row = session.get(DisposalEvidence, device_id)
    own = Evidence(**{f.name: getattr(row, f.name) for f in fields(Evidence)}) if row else Evidence()
    batch = session.get(DisposalBatch, batch_id) if batch_id is not None else None
    if batch is None:
        return own
    shared = Evidence(transfer_note_ref=batch.transfer_note_ref, carrier=batch.carrier, recycler=batch.recycler,
                      accreditation=batch.accreditation, collected_on=batch.collected_on)
    return shared.merged(own)


@dataclass(frozen=True)
class MoveResult:
    device_id: int
    hostname: str
    from_state: str
    to_state: str
    outcome: str | None


def move(session: Session, ref: str, target: State, reason: str, actor: str, outcome: Outcome | None = None,
         evidence: Evidence | None = None, batch: str | None = None, on: date | None = None) -> MoveResult:
    """Move one device to ``target`` if the rules allow it, recording evidence, transition and change."""
    if not reason.strip():
        raise Refused("a move needs a reason")
    device = find_device(session, ref)
    asset = asset_of(session, device, actor)
    current = State(asset.state)
    if batch is not None:
        _join_batch(session, asset, device, _batch(session, batch), actor)
    if evidence is not None and evidence != Evidence():
        _store_evidence(session, device.id, evidence)
    check_move(current, target, outcome, missing_for(target, evidence_of(session, device.id, asset.batch_id)))
    asset.state = target.value
    asset.outcome = outcome.value if outcome else None
    if target is State.DISPOSED:
        asset.disposed_on = on or local_today(session, device)
    asset.updated_at = utcnow()
    session.add(asset)
    session.add(Transition(device_id=device.id, actor=actor, reason=reason.strip(), from_state=current.value,
                           to_state=target.value, outcome=asset.outcome))
    changes.record(session, actor, "lifecycle.move", device, before={"state": current.value},
                   after={"state": target.value, "outcome": asset.outcome, "reason": reason.strip()})
    return MoveResult(device.id, device.hostname, current.value, target.value, asset.outcome)


def _store_evidence(session: Session, device_id: int, evidence: Evidence) -> None:
    row = session.get(DisposalEvidence, device_id) or DisposalEvidence(device_id=device_id)
    before = Evidence(**{f.name: getattr(row, f.name) for f in fields(Evidence)})
    for name, value in vars(before.merged(evidence)).items():
        setattr(row, name, value)
    row.retain_until = retain_until(row.collected_on) if row.collected_on else None
    row.updated_at = utcnow()
    session.add(row)


def _batch(session: Session, name: str) -> DisposalBatch:
    batch = session.exec(select(DisposalBatch).where(DisposalBatch.name == name)).first()
    if batch is None:
        raise NotFound(f"no disposal batch called {name!r}")
    return batch


def _join_batch(session: Session, asset: Asset, device: Device, batch: DisposalBatch, actor: str) -> None:
    if asset.state not in {State.RETIRED, *LEAVING} or asset.state == State.DISPOSED:
        raise Refused(f"{device.hostname} is {asset.state}; only retired devices not yet disposed join a "
                      "disposal batch")
    if asset.batch_id == batch.id:
        return
    before = asset.batch_id
    asset.batch_id = batch.id
    session.add(asset)
    changes.record(session, actor, "lifecycle.batch", device, before={"batch_id": before},
                   after={"batch_id": batch.id, "batch": batch.name})


@dataclass(frozen=True)
class BatchView:
    id: int
    name: str
    transfer_note_ref: str
    carrier: str
    recycler: str
    accreditation: str
    collected_on: date
    retain_until: date
    devices: list[int]


def create_batch(session: Session, name: str, transfer_note_ref: str, carrier: str, recycler: str,
                 accreditation: str, collected_on: date, actor: str) -> BatchView:
    values = {"name": name, "transfer note": transfer_note_ref, "carrier": carrier, "recycler": recycler,
              "accreditation": accreditation}
    if empty := [k for k, v in values.items() if not v.strip()]:
        raise Refused(f"a disposal batch needs {', '.join(empty)}")
    if session.exec(select(DisposalBatch).where(DisposalBatch.name == name)).first() is not None:
        raise Refused(f"a disposal batch called {name!r} already exists")
    batch = DisposalBatch(name=name, transfer_note_ref=transfer_note_ref, carrier=carrier, recycler=recycler,
                          accreditation=accreditation, collected_on=collected_on,
                          retain_until=retain_until(collected_on))
    session.add(batch)
    session.flush()
    changes.record(session, actor, "lifecycle.batch.create", batch, after=changes.snapshot(
        batch, ("name", "transfer_note_ref", "carrier", "recycler", "accreditation", "collected_on", "retain_until")))
    return batch_view(session, name)


def add_to_batch(session: Session, name: str, refs: list[str], actor: str) -> BatchView:
    batch = _batch(session, name)
    for ref in refs:
        device = find_device(session, ref)
        _join_batch(session, asset_of(session, device, actor), device, batch, actor)
    session.flush()
    return batch_view(session, name)


def batch_view(session: Session, name: str) -> BatchView:
    batch = _batch(session, name)
    members = session.exec(select(Asset.device_id).where(Asset.batch_id == batch.id).order_by(Asset.device_id)).all()
    return BatchView(batch.id, batch.name, batch.transfer_note_ref, batch.carrier, batch.recycler,
                     batch.accreditation, batch.collected_on, batch.retain_until, list(members))


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    actor: str
    from_state: str | None
    to_state: str
    outcome: str | None
    reason: str


def history(session: Session, ref: str, may_see: Callable[[int], bool] | None = None) -> list[HistoryLine]:
    device = find_device(session, ref)
    if may_see is not None and not may_see(device.site_id):
        raise NotFound(f"no device with id, asset tag, serial or hostname {ref!r}")
    rows = session.exec(select(Transition).where(Transition.device_id == device.id)
                        .order_by(Transition.at, Transition.id)).all()
    return [HistoryLine(t.at, t.actor, t.from_state, t.to_state, t.outcome, t.reason) for t in rows]
