"""The lifecycle as the console shows it: where a device is, where it may go next, what evidence is held.

The rules and the writes belong to controller.lifecycle; this module only gathers them for one page.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from controller.lifecycle.evidence import REQUIRED, Evidence, Sanitisation, missing_for
from controller.lifecycle.models import Asset, DisposalBatch
from controller.lifecycle.service import HistoryLine, evidence_of, history
from controller.lifecycle.states import ALLOWED, Outcome, State
from controller.register.models import Device


@dataclass(frozen=True)
class Lifecycle:
    state: State
    outcome: str | None
    batch: str | None
    evidence: Evidence
    next_states: list[State]
    missing: dict[str, list[str]]  # target state -> evidence still missing for it
    history: list[HistoryLine]
    outcomes: tuple[Outcome, ...] = tuple(Outcome)
    methods: tuple[Sanitisation, ...] = tuple(Sanitisation)


def lifecycle_of(session: Session, device_id: int) -> Lifecycle | None:
    """None for a device not yet in the asset register (it enters on its first move)."""
    asset = session.get(Asset, device_id)
    if asset is None:
        return None
    state = State(asset.state)
    evidence = evidence_of(session, device_id, asset.batch_id)
    batch = session.get(DisposalBatch, asset.batch_id) if asset.batch_id else None
    nexts = sorted(ALLOWED[state])
    return Lifecycle(state, asset.outcome, batch.name if batch else None, evidence, nexts,
                     {t.value: missing_for(t, evidence) for t in nexts if t in REQUIRED},
                     history(session, str(device_id)))


@dataclass(frozen=True)
class BatchLine:
    name: str
    transfer_note_ref: str
    recycler: str
    collected_on: str
    devices: int


def batches(session: Session) -> list[BatchLine]:
    rows = session.exec(select(DisposalBatch).order_by(col(DisposalBatch.collected_on).desc())).all()
    counts = {b.id: len(session.exec(select(Asset.device_id).where(Asset.batch_id == b.id)).all()) for b in rows}
    return [BatchLine(b.name, b.transfer_note_ref, b.recycler, b.collected_on.isoformat(), counts[b.id])
            for b in rows]


def leaving(session: Session, site_ids: frozenset[int] | None) -> list[tuple[int, str, str]]:
    """Devices retired or on their way out: (device id, hostname, state), for the disposal worklist."""
    query = (select(Device.id, Device.hostname, Asset.state).join(Asset, col(Asset.device_id) == col(Device.id))
             .where(col(Asset.state).in_([State.RETIRED, State.AWAITING_DISPOSAL, State.SANITISED])))
    if site_ids is not None:
        query = query.where(col(Device.site_id).in_(site_ids))
    return list(session.exec(query.order_by(Asset.state, Device.hostname)).all())
