"""What switching a policy's mode would do, for the console's confirmation page: the devices it applies
to, by site, and the last week replayed with and without the switch (controller.policy.replay).

Shown before a network manager moves a policy from observe to enforcing, so nobody switches blind.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from controller.policy.model import Mode
from controller.policy.replay import estate, projected_impact
from controller.policy.simulate import Simulation
from controller.policy.store import ActiveSet

REPLAYED = timedelta(days=7)


@dataclass(frozen=True)
class Impact:
    policy: str
    from_mode: str | None
    to_mode: str
    by_site: dict[str, int]  # devices the policy applies to
    now: Simulation  # the last week as things are
    after: Simulation  # and with the switch

    @property
    def devices(self) -> int:
        return sum(self.by_site.values())

    @property
    def extra_kwh(self) -> float:
        return self.after.saved_kwh - self.now.saved_kwh


def impact(session: Session, active: ActiveSet, name: str, mode: Mode, now: datetime) -> Impact:
    """Raises UnknownPolicy for a name not in force."""
    policy = active.named(name)
    facts, _ = estate(session, active)
    by_site = Counter(f.site for f in facts if policy.applies_to.matches(f))
    before, after = projected_impact(session, active, name, mode, now - REPLAYED, now)
    return Impact(name, policy.power.mode.value if policy.power else None, mode.value,
                  dict(sorted(by_site.items())), before, after)
