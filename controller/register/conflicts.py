"""Conflicts a person must resolve, because no rule can tell an attack from a mistake.

Three kinds, each raised by the register and never settled by it:

* ``clone``: a device kept apart from another that shares its machine-id or SMBIOS UUID but not its
  hardware (a cloned disk image, a VM template);
* ``elsewhere``: a machine enrolled with one site's token whose evidence matches a device of another
  site. Enrollment never moves or claims a device across sites (enrollment.py), so this is either a
  machine that really moved between schools or someone borrowing a device's identity;
* ``shared``: one agent credential reporting from two machines (a copied credentials file, a disk
  cloned with the agent's state). Its reports are stored, but it stops changing its device until this
  is resolved.

They are listed by ``caretaker devices --conflicts``, the console's conflicts page and /metrics, and
resolved by ``caretaker device resolve`` or ``POST /api/v1/devices/{id}/conflict``, through
:func:`resolve` (one rule, one place), every resolution a change record.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session, col, select

from agent.protocol import Inventory, from_wire, to_wire
from controller.errors import DomainError
from controller.register import changes
from controller.register.devices import NotFound, apply_inventory
from controller.register.identity import fingerprint_of, fingerprint_to_json
from controller.register.models import Agent, ConflictKind, Device, Site

log = logging.getLogger(__name__)
SHARED = "shared"  # the third kind: it lives on the agent, not in Device.conflict_kind


class Resolution(StrEnum):
    KEEP_APART = "keep-apart"  # clone or elsewhere: two machines, each with its own device; clear the flag
    REFUSE = "refuse"  # clone or elsewhere: it should not have enrolled; retire its agents, clear the flag
    ACCEPT = "accept"  # shared: the new hardware is this device's (a board swap); adopt it
    RETIRE = "retire"  # shared: retire the credential; each real machine enrolls again with a site token


FOR_DEVICE = (Resolution.KEEP_APART, Resolution.REFUSE)
FOR_SHARED = (Resolution.ACCEPT, Resolution.RETIRE)


class ConflictError(ValueError, DomainError):
    """The resolution does not fit the device's conflict (or it has none); the message says which does."""


@dataclass(frozen=True)
class ConflictLine:
    id: int  # the device
    site_id: int
    site: str
    hostname: str
    serial: str | None
    kind: str  # clone, elsewhere or shared
    conflict_with: int | None  # the other device, for clone and elsewhere
    conflict_reason: str
    agent_id: str | None  # the shared credential
    since: datetime | None


def list_conflicts(session: Session, site: str | None = None) -> list[ConflictLine]:
    """Every unresolved conflict, flagged devices first, by site and hostname."""
    flagged = select(Device, Site.name).join(Site, col(Site.id) == Device.site_id).where(
        col(Device.conflict_with).is_not(None))
    shared = select(Agent, Device, Site.name).join(Device, col(Device.id) == Agent.device_id).join(
        Site, col(Site.id) == Device.site_id).where(col(Agent.shared_since).is_not(None),
                                                    col(Agent.retired_at).is_(None))
    if site is not None:
        flagged, shared = flagged.where(Site.name == site), shared.where(Site.name == site)
    lines = [ConflictLine(d.id, d.site_id, site_name, d.hostname, d.serial, d.conflict_kind or ConflictKind.CLONE.value,
                          d.conflict_with, d.conflict_reason or "", None, d.first_seen)
             for d, site_name in session.exec(flagged.order_by(Site.name, Device.hostname, Device.id)).all()]
    lines += [ConflictLine(d.id, d.site_id, site_name, d.hostname, d.serial, SHARED, None, a.shared_reason or "", a.id,
                           a.shared_since)
              for a, d, site_name in session.exec(shared.order_by(Site.name, Device.hostname, Agent.id)).all()]
    return lines


def count_conflicts(session: Session) -> Counter[str]:
    """Unresolved conflicts by kind, for /metrics."""
    return Counter(line.kind for line in list_conflicts(session))


def mark_shared(session: Session, agent: Agent, reason: str, inventory: Inventory, now: datetime) -> None:
    """Ingest found ``agent``'s credential reporting from other hardware than it was issued to."""
    agent.shared_since = now
    agent.shared_reason = (f"credential issued to one machine reports from another: {reason}")[:500]
    agent.shared_inventory = to_wire(inventory)
    changes.record(session, f"agent:{agent.id}", "credential_shared", agent,
                   after={"reason": agent.shared_reason, "hostname": inventory.hostname})
    log.warning("agent %s (device %d) reports from other hardware (%s): marked shared; its reports are kept, "
                "its device is no longer changed until a network manager resolves it", agent.id, agent.device_id,
                reason)


def resolve(session: Session, device_id: int, resolution: Resolution, actor: str, now: datetime) -> str:
    """Settle a device's conflict; returns what was done, in a sentence. The caller commits."""
    device = session.get(Device, device_id)
    if device is None:
        raise NotFound(f"no device with id {device_id}")
    if resolution in FOR_DEVICE:
        return _resolve_flag(session, device, resolution, actor, now)
    return _resolve_shared(session, device, resolution, actor, now)


def _active_agents(session: Session, device: Device) -> list[Agent]:
    return list(session.exec(select(Agent).where(Agent.device_id == device.id, col(Agent.retired_at).is_(None))
                             .order_by(Agent.id)).all())


def _resolve_flag(session: Session, device: Device, resolution: Resolution, actor: str, now: datetime) -> str:
    if device.conflict_with is None:
        raise ConflictError(f"device {device.id} is not kept apart from another; "
                            f"{' or '.join(FOR_SHARED)} settle a shared credential")
    before = {"conflict_with": device.conflict_with, "kind": device.conflict_kind, "reason": device.conflict_reason}
    other = device.conflict_with
    device.conflict_with = device.conflict_reason = device.conflict_kind = None
    retired = []
    if resolution is Resolution.REFUSE:
        for agent in _active_agents(session, device):
            agent.retired_at = now
            retired.append(agent.id)
    changes.record(session, actor, f"conflict_{resolution.value.replace('-', '_')}", device, before=before,
                   after={"retired_agents": retired})
    if resolution is Resolution.REFUSE:
        return f"device {device.id} refused: {len(retired)} agent(s) retired; device {other} was never touched"
    return f"device {device.id} kept apart from device {other} as a machine of its own"


def _resolve_shared(session: Session, device: Device, resolution: Resolution, actor: str, now: datetime) -> str:
    shared = [a for a in _active_agents(session, device) if a.shared_since is not None]
    if not shared:
        raise ConflictError(f"device {device.id} has no shared credential; "
                            f"{' or '.join(FOR_DEVICE)} settle a device kept apart")
    for agent in shared:
        before = {"shared_since": agent.shared_since.isoformat(), "reason": agent.shared_reason}
        if resolution is Resolution.ACCEPT and agent.shared_inventory is not None:
            inventory = from_wire(Inventory, agent.shared_inventory)
            agent.fingerprint = fingerprint_to_json(fingerprint_of(inventory))
            apply_inventory(session, device, inventory, actor)
        if resolution is Resolution.RETIRE:
            agent.retired_at = now
        agent.shared_since = agent.shared_reason = agent.shared_inventory = None
        changes.record(session, actor, f"credential_{resolution.value}", agent, before=before)
    names = ", ".join(a.id for a in shared)
    if resolution is Resolution.ACCEPT:
        return f"agent {names} accepted on its new hardware; it updates device {device.id} again"
    return f"agent {names} retired; each machine that used it must enroll again with a site token"
