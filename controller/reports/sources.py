"""What reports read from the register: the sites in scope, their devices, power actions, wakes and policy
changes within a period. Queries only; energy comes from the energy package, figures are worked out elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from controller.errors import DomainError
from controller.power.models import WakeRequest
from controller.register.models import ActionRecord, ChangeRecord, Device, Site


class ScopeError(LookupError, DomainError):
    """The site or trust named is not in the register."""


@dataclass(frozen=True)
class Scope:
    """A site, or every site of a trust or local authority."""

    label: str
    sites: tuple[Site, ...]

    @property
    def site_ids(self) -> list[int]:
        return [s.id for s in self.sites if s.id is not None]


def resolve_scope(session: Session, site: str | None = None, trust: str | None = None) -> Scope:
    """The site called ``site`` if given, else every site of ``trust``."""
    if site is not None:
        found = session.exec(select(Site).where(Site.name == site)).first()
        if found is None:
            raise ScopeError(f"no site called {site!r}")
        return Scope(found.name, (found,))
    sites = tuple(session.exec(select(Site).where(Site.trust == trust).order_by(Site.name)).all())
    if not sites:
        raise ScopeError(f"no site belongs to a trust called {trust!r}")
    return Scope(trust or "", sites)


def devices(session: Session, scope: Scope) -> list[Device]:
    return list(session.exec(select(Device).where(col(Device.site_id).in_(scope.site_ids))
                             .order_by(Device.site_id, Device.hostname)).all())


def power_actions(session: Session, scope: Scope, start: datetime, end: datetime) -> list[ActionRecord]:
    """Power-downs and other actions in the audit log, wakes excepted (each wake logs every step)."""
    return list(session.exec(
        select(ActionRecord).where(col(ActionRecord.site_id).in_(scope.site_ids), ActionRecord.at >= start,
                                   ActionRecord.at < end, ActionRecord.kind != "wake").order_by(ActionRecord.at)
    ).all())


def wake_requests(session: Session, scope: Scope, start: datetime, end: datetime) -> list[WakeRequest]:
    """Wakes requested in the period, each with the status it ended in (or is in now)."""
    return list(session.exec(
        select(WakeRequest).where(col(WakeRequest.site_id).in_(scope.site_ids), WakeRequest.requested_at >= start,
                                  WakeRequest.requested_at < end)
    ).all())


def policy_changes(session: Session, start: datetime, end: datetime) -> list[ChangeRecord]:
    """Changes to policies in the period. Policies are estate-wide files, so these are not filtered by site."""
    return list(session.exec(
        select(ChangeRecord).where(ChangeRecord.object_type == "policy", ChangeRecord.at >= start,
                                   ChangeRecord.at < end).order_by(ChangeRecord.at)
    ).all())
