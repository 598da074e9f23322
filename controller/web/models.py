"""Who may use the console and the API: users, their sessions, API tokens and the sites auditors may see.

Secrets are never stored: passwords as argon2 hashes, session ids and API tokens as SHA-256 of a random
value (they are 32 random bytes, so a fast hash is enough; a stolen table gives nothing to replay).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from controller.db import UTCDateTime
from controller.timeutil import utcnow


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    role: str = Field(max_length=32)  # a controller.web.accounts.Role
    password_hash: str = Field(max_length=200)
    disabled: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_sign_in: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UserSite(SQLModel, table=True):
    """A site an auditor may see; other roles see every site and have no rows here."""

    user_id: int = Field(primary_key=True, foreign_key="user.id")
    site_id: int = Field(primary_key=True, foreign_key="site.id")


class WebSession(SQLModel, table=True):
    """A signed-in browser; it ends at sign-out, after an idle spell, or at its absolute age."""

    id_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    csrf_token: str = Field(max_length=64)  # sent back in every form; a cross-site page cannot read it
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiToken(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(unique=True, max_length=64)
    prefix: str = Field(max_length=16)  # enough to recognise it in `caretaker apitoken list`
    role: str = Field(max_length=32)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiTokenSite(SQLModel, table=True):
    """A site a token may see; a token with no rows sees every site (unless its role is auditor)."""

    token_id: int = Field(primary_key=True, foreign_key="apitoken.id")
    site_id: int = Field(primary_key=True, foreign_key="site.id")


class StaffRoom(SQLModel, table=True):
    """A room a staff user (or a staff API token) may wake: the only devices that role can act on or see.

    Exactly one of ``user_id`` and ``token_id`` is set. The room is matched against ``Device.room`` without
    regard to case, within its site."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    token_id: int | None = Field(default=None, foreign_key="apitoken.id", index=True)
    site_id: int = Field(foreign_key="site.id")
    room: str = Field(max_length=100)
