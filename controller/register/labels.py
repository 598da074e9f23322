"""Writing a device's room and tags: by hand (CLI, API, console) and from its agent's own labels.

Each source writes only its own columns (``hand_*``, ``agent_*``; the asset register CSV writes ``room``
and ``tags``), so a later import or agent report never overwrites what a person set, and
``placement.resolve`` can say which source each value came from. Every change is a change record and
is what tells the schedule planner to compile the device's schedule again (policy/dispatch.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, select

from agent.protocol import has_control_characters
from controller.register import changes
from controller.register.facts import labels
from controller.register.models import Device, Site
from controller.register.placement import Labels, PlacementRule

MAX_ROOM = 100
MAX_TAG = 50
MAX_TAGS = 50
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:/-]*")
_FIELDS = ("hand_room", "hand_tags", "hand_untags", "agent_room", "agent_tags")


class LabelRefused(ValueError):
    """A room or tag that cannot be stored; nothing was changed."""


def room_name(text: str) -> str:
    value = text.strip()
    if not value or len(value) > MAX_ROOM or has_control_characters(value):
        raise LabelRefused(f"{text!r} is not a room: 1 to {MAX_ROOM} characters, no control characters")
    return value


def tag_name(text: str) -> str:
    value = text.strip()
    if len(value) > MAX_TAG or not _TAG.fullmatch(value):
        raise LabelRefused(f"{text!r} is not a tag: 1 to {MAX_TAG} letters, digits, spaces or . _ : / -, "
                           "starting with a letter or digit")
    return value


def _merge(current: Iterable[str], add: Iterable[str], remove: Iterable[str]) -> list[str]:
    gone = {t.casefold() for t in remove}
    kept: dict[str, str] = {}
    for tag in (*current, *add):
        if tag.casefold() not in gone:
            kept.setdefault(tag.casefold(), tag)
    return list(kept.values())


def set_by_hand(session: Session, device: Device, actor: str, room: str | None = None, clear_room: bool = False,
                tag: Sequence[str] = (), untag: Sequence[str] = ()) -> bool:
    """Set the device's room, add tags and remove tags, as a person decided; True when anything changed.

    ``untag`` removes a tag whatever source gives it (a rule or the agent cannot add it back until someone
    tags it by hand again); ``clear_room`` forgets the hand-set room, so the register, a rule or the agent
    places the device again."""
    if room is not None and clear_room:
        raise LabelRefused("give --room or --clear-room, not both")
    new_room = room_name(room) if room is not None else None
    added = [tag_name(t) for t in tag]
    removed = [tag_name(t) for t in untag]
    clash = {t.casefold() for t in added} & {t.casefold() for t in removed}
    if clash:
        raise LabelRefused(f"{', '.join(sorted(clash))}: tagged and untagged at once")
    if len(added) > MAX_TAGS:
        raise LabelRefused(f"at most {MAX_TAGS} tags")
    before = changes.snapshot(device, _FIELDS)
    if new_room is not None:
        device.hand_room = new_room
    elif clear_room:
        device.hand_room = None
    device.hand_tags = _merge(device.hand_tags or (), added, removed) or None
    device.hand_untags = _merge(device.hand_untags or (), removed, added) or None
    return _changed(session, device, actor, before)


def set_by_agent(session: Session, device: Device, actor: str, room: str | None, tags: Sequence[str]) -> bool:
    """The labels the agent reports from its own config file (checked by the protocol already)."""
    before = changes.snapshot(device, _FIELDS)
    device.agent_room = room or None
    device.agent_tags = _merge((), tags, ()) or None
    return _changed(session, device, actor, before)


def _changed(session: Session, device: Device, actor: str, before: dict) -> bool:
    after = changes.snapshot(device, _FIELDS)
    if after == before:
        return False
    session.add(device)
    changes.record(session, actor, "labels", device, before={k: v for k, v in before.items() if after[k] != v},
                   after={k: v for k, v in after.items() if before[k] != v})
    return True


@dataclass(frozen=True)
class Placed:
    device: Device
    site: str
    labels: Labels


def placed_devices(session: Session, rules: Sequence[PlacementRule], site: str | None = None,
                   room: str | None = None, tag: str | None = None, ids: Iterable[int] | None = None,
                   site_ids: Iterable[int] | None = None) -> list[Placed]:
    """Devices with their resolved room and tags, filtered by them (case-insensitive): rules are computed,
    so a filter on room or tag cannot be a query on a column."""
    query = select(Device, Site).join(Site, col(Site.id) == Device.site_id)
    if site is not None:
        query = query.where(Site.name == site)
    if ids is not None:
        query = query.where(col(Device.id).in_(list(ids)))
    if site_ids is not None:
        query = query.where(col(Device.site_id).in_(list(site_ids)))
    found = []
    for device, where in session.exec(query.order_by(Site.name, Device.hostname, Device.id)):
        placed = labels(device, where, rules)
        if room is not None and (placed.room_name or "").casefold() != room.strip().casefold():
            continue
        if tag is not None and tag.strip().casefold() not in {t.casefold() for t in placed.tag_names}:
            continue
        found.append(Placed(device, where.name, placed))
    return found
