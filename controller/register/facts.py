"""What a device is, as every policy surface sees it: the one ``device_facts`` that schedules sent to
agents, `caretaker policy explain` and `schedule`, simulation, reports and metrics all call."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from controller.policy.model import Activity, DeviceFacts
from controller.register.models import Device, Site
from controller.register.placement import Described, Labels, PlacementRule, Stored, addresses_of, resolve

RELAY_DUTY = "wake-on-LAN relay for its subnet"


def described(device: Device, site: Site) -> Described:
    return Described(hostname=device.hostname, device_class=device.device_class or "unknown", site=site.name,
                     addresses=addresses_of(device.inventory), agent_tags=tuple(device.agent_tags or ()),
                     agent_room=device.agent_room)


def stored(device: Device) -> Stored:
    return Stored(hand_room=device.hand_room, hand_tags=tuple(device.hand_tags or ()),
                  hand_untags=tuple(device.hand_untags or ()), register_room=device.room,
                  register_tags=tuple(device.tags or ()))


def labels(device: Device, site: Site, rules: Sequence[PlacementRule]) -> Labels:
    """The device's room and tags with the source of each (placement.resolve's precedence)."""
    return resolve(stored(device), described(device, site), rules)


def device_facts(device: Device, site: Site, rules: Sequence[PlacementRule], relay: bool = False,
                 activity: Activity | None = None) -> DeviceFacts:
    """``relay``: the device is its subnet's elected wake-on-LAN relay, a duty no policy may interrupt."""
    found = labels(device, site, rules)
    return DeviceFacts(device_id=str(device.id), hostname=device.hostname, site=site.name,
                       device_class=device.device_class, tags=found.tag_names, group=found.room_name,
                       activity=activity, kept_on_by=RELAY_DUTY if relay else None)


def register_facts(session: Session, rules: Sequence[PlacementRule]) -> list[DeviceFacts]:
    """Every device of the register as the schedules see it."""
    return [device_facts(device, site, rules)
            for device, site in session.exec(select(Device, Site).join(Site, col(Site.id) == Device.site_id)
                                             .order_by(Device.id))]
