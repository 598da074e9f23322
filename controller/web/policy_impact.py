"""What switching a policy's mode would do, for the confirmation page: the devices it applies to now.

Shown before a network manager moves a policy from observe to enforcing, so nobody switches blind.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from controller.models import Device, Site
from controller.policy.model import DeviceFacts, Mode, Policy


@dataclass(frozen=True)
class Impact:
    devices: int  # the devices the policy applies to
    by_site: dict[str, int]
    from_mode: str | None
    to_mode: str


def impact(session: Session, policy: Policy, mode: Mode) -> Impact:
    by_site: dict[str, int] = {}
    rows = session.exec(select(Device, Site.name).join(Site, col(Site.id) == col(Device.site_id))).all()
    for device, site in rows:
        facts = DeviceFacts(device_id=str(device.id), hostname=device.hostname, site=site,
                            device_class=device.device_class, tags=tuple(device.tags or ()), group=device.room)
        if policy.applies_to.matches(facts):
            by_site[site] = by_site.get(site, 0) + 1
    return Impact(sum(by_site.values()), dict(sorted(by_site.items())),
                  policy.power.mode.value if policy.power else None, mode.value)
