"""Users, sessions and API tokens as plain functions over a database session.

The FastAPI edge (controller/api/auth.py) turns a cookie or a bearer token into a ``Principal`` with
these functions; the CLI and the console's users page manage accounts with them. Every change, and every
failed sign-in, is written to the change log in the same transaction.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete
from sqlmodel import Session, col, select

from controller.errors import DomainError
from controller.register import changes
from controller.register.models import ChangeRecord, Site
from controller.settings import Settings
from controller.timeutil import utcnow
from controller.web.models import ApiToken, ApiTokenSite, StaffRoom, User, UserSite, WebSession

TOKEN_PREFIX = "ct_"
MIN_PASSWORD_LENGTH = 12
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a wrong name costs as long as a wrong password.
    Made on first use: hashing costs ~0.2 s, which every `caretaker` command would otherwise pay at import."""
    return _hasher.hash(secrets.token_urlsafe(16))


class Role(enum.StrEnum):
    network_manager = "network_manager"  # everything
    bursar = "bursar"  # reports and read-only views of every site
    auditor = "auditor"  # read-only, only the sites granted
    staff = "staff"  # wakes the PCs of the rooms granted (a teacher's wake button), and sees nothing else


class AccountError(ValueError, DomainError):
    """Something a person can fix: a duplicate name, a short password, an unknown site."""


@dataclass(frozen=True)
class Principal:
    """Who is asking: ``site_ids`` is None for every site, else the only sites they may see."""

    actor: str  # "user:<name>" or "token:<name>", as written in the change and action logs
    role: Role
    site_ids: frozenset[int] | None
    csrf_token: str | None = None  # set for browser sessions only; API tokens carry no cookie
    rooms: frozenset[tuple[int, str]] = frozenset()  # staff: (site id, room folded) they may wake

    def may_see(self, site_id: int) -> bool:
        return self.site_ids is None or site_id in self.site_ids

    def may_wake(self, site_id: int, room: str | None) -> bool:
        """Staff wake only their rooms; network managers wake anything (the other roles nothing)."""
        if self.role is Role.network_manager:
            return True
        return self.role is Role.staff and room is not None and (site_id, fold_room(room)) in self.rooms


def fold_room(room: str) -> str:
    """Rooms are typed by people: "ICT Suite" and "ict suite " are one room."""
    return room.strip().casefold()


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    absolute: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionPolicy:
        return cls(timedelta(minutes=settings.session_idle_minutes), timedelta(hours=settings.session_absolute_hours))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _site_ids(session: Session, names: list[str]) -> list[int]:
    sites = {s.name: s.id for s in session.exec(select(Site).where(col(Site.name).in_(names))).all()}
    missing = sorted(set(names) - set(sites))
    if missing:
        raise AccountError(f"no site named {', '.join(missing)}")
    return [sites[n] for n in dict.fromkeys(names)]


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")


def _check_grants(role: Role, sites: list[str], rooms: list[str]) -> list[str]:
    """The rooms to grant, cleaned: only staff have rooms, and staff must have rooms at named sites."""
    rooms = list(dict.fromkeys(r.strip() for r in rooms if r.strip()))
    if role is Role.staff:
        if not rooms or not sites:
            raise AccountError("a staff account needs the rooms it may wake: --site SITE --room ROOM (repeat --room)")
        if any(len(room) > 100 for room in rooms):
            raise AccountError("a room name is at most 100 characters")
    elif rooms:
        raise AccountError("only staff are limited to rooms; other roles act on whole sites")
    elif sites and role is not Role.auditor:
        raise AccountError("only auditors and staff are limited to sites; other roles see every site")
    return rooms


def _grant_rooms(session: Session, site_ids: list[int], rooms: list[str], user_id: int | None = None,
                 token_id: int | None = None) -> None:
    for site_id in site_ids:
        for room in rooms:
            session.add(StaffRoom(user_id=user_id, token_id=token_id, site_id=site_id, room=room))


def _rooms_of(session: Session, user_id: int | None = None, token_id: int | None = None) -> frozenset[tuple[int, str]]:
    query = select(StaffRoom.site_id, StaffRoom.room)
    query = query.where(StaffRoom.user_id == user_id) if user_id is not None else \
        query.where(StaffRoom.token_id == token_id)
    return frozenset((site_id, fold_room(room)) for site_id, room in session.exec(query))


def _room_lines(session: Session, column) -> dict[int, list[str]]:
    """Each holder's rooms as "Site: Room", for `caretaker user list` and `apitoken list`."""
    found: dict[int, list[str]] = {}
    for holder, site, room in session.exec(select(column, Site.name, StaffRoom.room)
                                           .join(Site, col(Site.id) == StaffRoom.site_id)
                                           .where(column.is_not(None)).order_by(Site.name, StaffRoom.room)):
        found.setdefault(holder, []).append(f"{site}: {room}")
    return found


def add_user(session: Session, name: str, role: Role, password: str, sites: list[str], actor: str,
             rooms: list[str] = ()) -> User:
    name = name.strip()
    if not name:
        raise AccountError("a user needs a name")
    if session.exec(select(User).where(User.name == name)).first():
        raise AccountError(f"a user named {name} already exists")
    rooms = _check_grants(role, sites, list(rooms))
    _check_password(password)
    site_ids = _site_ids(session, sites)
    user = User(name=name, role=role.value, password_hash=_hasher.hash(password))
    session.add(user)
    session.flush()
    if role is Role.staff:
        _grant_rooms(session, site_ids, rooms, user_id=user.id)
    else:
        for site_id in site_ids:
            session.add(UserSite(user_id=user.id, site_id=site_id))
    changes.record(session, actor, "user_added", user,
                   after={"name": name, "role": role.value, "sites": sites, **({"rooms": rooms} if rooms else {})})
    return user


@dataclass(frozen=True)
class UserLine:
    id: int
    name: str
    role: str
    sites: list[str]
    disabled: bool
    last_sign_in: datetime | None
    rooms: list[str]  # staff: "Site: Room" for each room they may wake


def list_users(session: Session) -> list[UserLine]:
    grants: dict[int, list[str]] = {}
    for user_id, site_name in session.exec(select(UserSite.user_id, Site.name)
                                           .join(Site, col(Site.id) == UserSite.site_id).order_by(Site.name)):
        grants.setdefault(user_id, []).append(site_name)
    rooms = _room_lines(session, StaffRoom.user_id)
    return [UserLine(u.id, u.name, u.role, grants.get(u.id, []), u.disabled, u.last_sign_in, rooms.get(u.id, []))
            for u in session.exec(select(User).order_by(User.name)).all()]


def disable_user(session: Session, name: str, actor: str) -> User:
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise AccountError(f"no user named {name}")
    if not user.disabled:
        user.disabled = True
        session.add(user)
        for web_session in session.exec(select(WebSession).where(WebSession.user_id == user.id)).all():
            session.delete(web_session)
        changes.record(session, actor, "user_disabled", user, before={"disabled": False}, after={"disabled": True})
    return user


def sign_in(session: Session, name: str, password: str, source: str) -> User | None:
    """The user if the name and password match an enabled account; None, logged, whatever the reason.

    There is no account lockout: it would let anyone who knows a manager's name keep them out. Guessing
    is slowed by source address and overall instead, before this is called (web/throttle.py).
    """
    user = session.exec(select(User).where(User.name == name)).first()
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
        ok = user is not None and not user.disabled
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        session.add(ChangeRecord(actor=f"web:{source}", action="sign_in_failed", object_type="user",
                                 object_id=str(user.id) if user else "-", after={"name": name[:100]}))
        return None
    user.last_sign_in = utcnow()
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    session.add(user)
    changes.record(session, f"user:{user.name}", "signed_in", user, after={"from": source})
    return user


def open_session(session: Session, user: User, policy: SessionPolicy, now: datetime) -> tuple[str, WebSession]:
    """A new session for ``user``: the cookie value (shown to the browser only) and its row.

    Sessions expired since (abandoned browsers never come back to be turned away) are deleted here.
    """
    session.exec(delete(WebSession).where(
        (col(WebSession.last_seen) < now - policy.idle) | (col(WebSession.created_at) < now - policy.absolute)))
    secret = secrets.token_urlsafe(32)
    row = WebSession(id_hash=_digest(secret), user_id=user.id, csrf_token=secrets.token_urlsafe(32))
    session.add(row)
    return secret, row


def close_session(session: Session, secret: str, actor: str) -> None:
    row = session.get(WebSession, _digest(secret))
    if row is not None:
        session.delete(row)
        session.add(ChangeRecord(actor=actor, action="signed_out", object_type="user", object_id=str(row.user_id)))


def session_principal(session: Session, secret: str, policy: SessionPolicy, now: datetime) -> Principal | None:
    """The principal behind a session cookie, if it is still valid; an expired session is deleted."""
    row = session.get(WebSession, _digest(secret))
    if row is None:
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled or now - row.last_seen > policy.idle or now - row.created_at > policy.absolute:
        session.delete(row)
        return None
    # Written at most once a minute: each page view need not be a write.
    if now - row.last_seen > timedelta(minutes=1):
        row.last_seen = now
        session.add(row)
    role = Role(user.role)
    if role is Role.staff:
        rooms = _rooms_of(session, user_id=user.id)
        return Principal(f"user:{user.name}", role, frozenset(site for site, _ in rooms), row.csrf_token, rooms)
    grants = session.exec(select(UserSite.site_id).where(UserSite.user_id == user.id)).all()
    return Principal(f"user:{user.name}", role, frozenset(grants) if role is Role.auditor else None, row.csrf_token)


def create_token(session: Session, name: str, role: Role, sites: list[str], expires_at: datetime | None,
                 actor: str, rooms: list[str] = ()) -> tuple[str, ApiToken]:
    """A new API token: the secret (shown once, never stored) and its row."""
    if not name.strip():
        raise AccountError("a token needs a name")
    rooms = _check_grants(role, sites, list(rooms)) if role is Role.staff or rooms else []
    site_ids = _site_ids(session, sites)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(name=name.strip(), token_hash=_digest(secret), prefix=secret[:10], role=role.value,
                     created_by=actor, expires_at=expires_at)
    session.add(token)
    session.flush()
    if role is Role.staff:
        _grant_rooms(session, site_ids, rooms, token_id=token.id)
    else:
        for site_id in site_ids:
            session.add(ApiTokenSite(token_id=token.id, site_id=site_id))
    changes.record(session, actor, "apitoken_created", token,
                   after={"name": token.name, "role": role.value, "sites": sites, **({"rooms": rooms} if rooms else {}),
                          "expires_at": expires_at.isoformat() if expires_at else None})
    return secret, token


@dataclass(frozen=True)
class TokenLine:
    id: int
    name: str
    prefix: str
    role: str
    sites: list[str]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used: datetime | None
    rooms: list[str]  # staff: "Site: Room" for each room it may wake


def list_tokens(session: Session) -> list[TokenLine]:
    grants: dict[int, list[str]] = {}
    for token_id, site_name in session.exec(select(ApiTokenSite.token_id, Site.name)
                                            .join(Site, col(Site.id) == ApiTokenSite.site_id).order_by(Site.name)):
        grants.setdefault(token_id, []).append(site_name)
    rooms = _room_lines(session, StaffRoom.token_id)
    return [TokenLine(t.id, t.name, t.prefix, t.role, grants.get(t.id, []), t.created_by, t.created_at,
                      t.expires_at, t.revoked_at, t.last_used, rooms.get(t.id, []))
            for t in session.exec(select(ApiToken).order_by(ApiToken.id)).all()]


def revoke_token(session: Session, token_id: int, actor: str) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise AccountError(f"no API token with id {token_id}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.add(token)
        changes.record(session, actor, "apitoken_revoked", token, after={"revoked_at": token.revoked_at.isoformat()})
    return token


def token_principal(session: Session, secret: str, now: datetime) -> Principal | None:
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = session.exec(select(ApiToken).where(ApiToken.token_hash == _digest(secret))).first()
    if token is None or token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    if token.last_used is None or now - token.last_used > timedelta(minutes=1):
        token.last_used = now
        session.add(token)
    role = Role(token.role)
    if role is Role.staff:
        rooms = _rooms_of(session, token_id=token.id)
        return Principal(f"token:{token.name}", role, frozenset(site for site, _ in rooms), rooms=rooms)
    grants = frozenset(session.exec(select(ApiTokenSite.site_id).where(ApiTokenSite.token_id == token.id)).all())
    return Principal(f"token:{token.name}", role, grants if grants or role is Role.auditor else None)
