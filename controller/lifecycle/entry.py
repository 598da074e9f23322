"""A device's entry into the lifecycle register: the one step the device register takes when it creates a
device, kept apart from lifecycle/service.py so the device register can call it without a circle."""

from __future__ import annotations

from sqlmodel import Session

from controller.lifecycle.models import Asset, Transition
from controller.lifecycle.states import State
from controller.register import changes
from controller.register.models import Device

ENTERED_BY_AGENT = "reported by its agent"


def enter_register(session: Session, device: Device, actor: str, state: State = State.DEPLOYED,
                   reason: str = ENTERED_BY_AGENT) -> Asset:
    """Start a device's life in the register; called once, when the device is created."""
    asset = Asset(device_id=device.id, state=state.value)
    session.add(asset)
    session.add(Transition(device_id=device.id, actor=actor, reason=reason, to_state=state.value))
    changes.record(session, actor, "lifecycle.enter", device, after={"state": state.value, "reason": reason})
    return asset
