"""Sites, enrollment tokens, and turning a token plus an inventory into an agent identity."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select, update

from agent.protocol import EnrollRequest, EnrollResponse
from controller.errors import DomainError
from controller.register import changes, credentials
from controller.register.devices import apply_inventory, candidates, create_device
from controller.register.identity import MatchResult, fingerprint_of, fingerprint_to_json, match
from controller.register.models import Agent, ConflictKind, Device, EnrollmentToken, Site
from controller.timeutil import as_utc

log = logging.getLogger(__name__)


class EnrollmentRefused(PermissionError, DomainError):
    """The token is unknown, expired, revoked or used up. The message says which, for the operator."""


class UnknownSite(LookupError, DomainError):
    pass


def site_by_name(session: Session, name: str) -> Site:
    site = session.exec(select(Site).where(Site.name == name)).first()
    if site is None:
        raise UnknownSite(f"no site called {name!r}")
    return site


def ensure_site(session: Session, name: str, actor: str) -> Site:
    site = session.exec(select(Site).where(Site.name == name)).first()
    if site is None:
        site = Site(name=name)
        session.add(site)
        session.flush()
        changes.record(session, actor, "create", site, after={"name": name})
    return site


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once; only its hash is stored
    record: EnrollmentToken


def create_token(session: Session, site_name: str, now: datetime, days: int, actor: str,
                 max_uses: int | None = None, note: str = "") -> IssuedToken:
    if days < 1:
        raise ValueError("a token must be valid for at least one day")
    site = ensure_site(session, site_name, actor)
    token = credentials.new_token()
    record = EnrollmentToken(site_id=site.id, token_hash=credentials.digest(token),
                             prefix=token[: len(credentials.TOKEN_PREFIX) + 6],
                             created_at=now, expires_at=now + timedelta(days=days), max_uses=max_uses, note=note)
    session.add(record)
    session.flush()
    changes.record(session, actor, "create", record,
                   after={"site": site_name, "expires_at": record.expires_at.isoformat(), "max_uses": max_uses})
    return IssuedToken(token, record)


def list_tokens(session: Session, site_name: str | None = None) -> list[tuple[EnrollmentToken, str]]:
    query = select(EnrollmentToken, Site.name).join(Site, col(Site.id) == EnrollmentToken.site_id)
    if site_name:
        query = query.where(Site.name == site_name)
    return list(session.exec(query.order_by(EnrollmentToken.id)).all())


def revoke_token(session: Session, token_id: int, now: datetime, actor: str) -> EnrollmentToken:
    record = session.get(EnrollmentToken, token_id)
    if record is None:
        raise LookupError(f"no enrollment token with id {token_id}")
    if record.revoked_at is None:
        record.revoked_at = now
        changes.record(session, actor, "revoke", record, after={"revoked_at": now.isoformat()})
    return record


def _usable_token(session: Session, token: str, now: datetime) -> EnrollmentToken:
    record = session.exec(select(EnrollmentToken).where(EnrollmentToken.token_hash == credentials.digest(token))
                          .with_for_update()).first()
    if record is None:
        raise EnrollmentRefused("unknown enrollment token")
    if record.revoked_at is not None:
        raise EnrollmentRefused(f"enrollment token {record.prefix}… was revoked")
    if as_utc(record.expires_at) <= now:
        raise EnrollmentRefused(f"enrollment token {record.prefix}… expired on {record.expires_at:%Y-%m-%d}")
    if record.max_uses is not None and record.uses >= record.max_uses:
        raise EnrollmentRefused(f"enrollment token {record.prefix}… has been used {record.uses} times, its limit")
    return record


def enroll(session: Session, request: EnrollRequest, now: datetime, report_interval_seconds: int) -> EnrollResponse:
    """Give the machine an agent identity, attached to the device it is (or a new one).

    Enrollment is scoped to the token's site. Identity evidence may match a device of that site only:
    a re-imaged or re-installed machine is recognised by its hardware and keeps its history, and its
    earlier agents are retired. Evidence that matches a device of any other site (of the same trust
    too) never moves or claims it: the machine gets a new device in the token's site, flagged as a
    conflict for a network manager to resolve (register/conflicts.py), and the other device, its
    history and its agent are left exactly as they were. A cloned disk image (same machine-id or UUID,
    different hardware) gets a device of its own, flagged likewise.
    """
    token = _usable_token(session, request.token, now)
    site = session.get(Site, token.site_id)
    token.uses += 1
    fingerprint = fingerprint_of(request.inventory)
    found = candidates(session, fingerprint)
    here = match(fingerprint, [(d.id, f) for d, f in found if d.site_id == site.id])
    agent_id = credentials.new_agent_id()
    actor = f"agent:{agent_id}"
    if here.device_id is not None:
        device = session.get(Device, here.device_id)
        apply_inventory(session, device, request.inventory, actor)
        session.exec(update(Agent).where(col(Agent.device_id) == device.id, col(Agent.retired_at).is_(None))
                     .values(retired_at=now))
    else:
        elsewhere = match(fingerprint, [(d.id, f) for d, f in found if d.site_id != site.id])
        device = create_device(session, site, request.inventory, actor, here if here.conflict else elsewhere)
        if elsewhere.device_id is not None:
            _keep_apart(session, device, elsewhere, site, actor)
    device.last_seen = now
    secret = credentials.new_secret()
    agent = Agent(id=agent_id, device_id=device.id, site_id=site.id, token_id=token.id,
                  secret_hash=credentials.digest(secret), enrolled_at=now,
                  fingerprint=fingerprint_to_json(fingerprint))
    session.add(agent)
    session.flush()
    changes.record(session, actor, "enroll", agent,
                   after={"device_id": device.id, "site": site.name, "token": token.prefix,
                          "evidence": list(here.evidence)})
    return EnrollResponse(agent_id=agent_id, secret=secret, device_id=device.id, site=site.name,
                          report_interval_seconds=report_interval_seconds)


def _keep_apart(session: Session, device: Device, elsewhere: MatchResult, site: Site, actor: str) -> None:
    """Flag a new device whose evidence matches a device of another site: a person decides, not a token."""
    other = session.get(Device, elsewhere.device_id)
    other_site = session.get(Site, other.site_id)
    device.conflict_with = other.id
    device.conflict_kind = ConflictKind.ELSEWHERE
    device.conflict_reason = (f"matches device {other.id} ({other.hostname}) of {other_site.name} "
                              f"({'; '.join(elsewhere.evidence)}) but enrolled with a token for {site.name}: "
                              "kept apart, nothing moved")[:500]
    changes.record(session, actor, "conflict", device,
                   after={"conflict_with": other.id, "kind": ConflictKind.ELSEWHERE.value,
                          "reason": device.conflict_reason})
    log.warning("enrollment for site %s matched device %d of site %s: new device %d kept apart as a conflict",
                site.name, other.id, other_site.name, device.id)
