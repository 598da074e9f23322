"""What a site says about itself: its trust or local authority, pupils on roll, postcode, nation and time zone.

One function changes a site, whoever asks (`caretaker site set`, the API, the console, the demo), so every
surface checks the same rules and leaves the same change record. A site is renamed in place: its devices,
tokens, energy and change log stay with the same row.
"""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlmodel import Session, col, func, select

from controller.energy.intensity import outcode
from controller.errors import DomainError
from controller.policy.calendar import Nation
from controller.register import changes
from controller.register.models import ChangeRecord, Device, Site

FIELDS = ("name", "trust", "pupils", "postcode", "nation", "timezone")
MAX_PUPILS = 100_000  # more than any school or college on roll: a larger number is a typing mistake
_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")


class SiteError(ValueError, DomainError):
    """A change the rules refuse: the message names the field and what it must be."""


class SiteNotFound(LookupError, DomainError):
    """No site has that name."""


class SiteNameTaken(SiteError):
    """A rename to a name another site has."""


@dataclass(frozen=True)
class SiteChange:
    """One change of a site as the change log holds it."""

    at: datetime
    actor: str
    action: str
    before: dict | None
    after: dict | None


@dataclass(frozen=True)
class SiteView:
    id: int
    name: str
    trust: str | None
    pupils: int | None
    postcode: str | None
    outcode: str | None  # the region its carbon intensity comes from (none: Great Britain's, or Northern Ireland)
    nation: str | None
    timezone: str
    devices: int
    history: tuple[SiteChange, ...] = ()


def list_sites(session: Session) -> list[SiteView]:
    counts = dict(session.exec(select(Device.site_id, func.count()).group_by(Device.site_id)).all())
    return [_view(site, counts.get(site.id, 0)) for site in session.exec(select(Site).order_by(Site.name))]


def site_detail(session: Session, name: str) -> SiteView:
    """The site and its history: every change record since it was created, under whatever name it had."""
    site = find_site(session, name)
    devices = session.exec(select(func.count()).select_from(Device).where(Device.site_id == site.id)).one()
    history = session.exec(select(ChangeRecord).where(ChangeRecord.object_type == "site",
                                                      ChangeRecord.object_id == str(site.id))
                           .order_by(col(ChangeRecord.at), col(ChangeRecord.id))).all()
    return _view(site, devices, tuple(SiteChange(c.at, c.actor, c.action, c.before, c.after) for c in history))


def find_site(session: Session, name: str) -> Site:
    name = _text("name", name, limit=1000)  # a NUL or control character is refused before it reaches a query
    site = session.exec(select(Site).where(Site.name == name)).first()
    if site is None:
        known = session.exec(select(Site.name).order_by(Site.name).limit(20)).all()
        raise SiteNotFound(f"no site called {name!r}" + (f"; sites are {', '.join(known)}" if known else ""))
    return site


def update_site(session: Session, name: str, wanted: dict[str, Any], actor: str) -> SiteView:
    """Apply ``wanted`` (field → new value; None or "" clears an optional field) to the site called ``name``,
    after checking every field; one change record holds what changed. Nothing is written when any field is
    refused, or when nothing changes."""
    if unknown := sorted(set(wanted) - set(FIELDS)):
        raise SiteError(f"unknown field(s) {', '.join(unknown)}; a site has {', '.join(FIELDS)}")
    site = find_site(session, name)
    checked = {field: _check(field, value) for field, value in wanted.items()}
    if "name" in checked and checked["name"] != site.name and session.exec(
            select(Site.id).where(Site.name == checked["name"])).first() is not None:
        raise SiteNameTaken(f"there is already a site called {checked['name']!r}")
    _check_nation_and_postcode(checked.get("nation", site.nation), checked.get("postcode", site.postcode))
    before = changes.snapshot(site, FIELDS)
    for field, value in checked.items():
        setattr(site, field, value)
    after = changes.snapshot(site, FIELDS)
    if after != before:
        session.add(site)
        session.flush()
        changes.record(session, actor, "update", site,
                       before={k: v for k, v in before.items() if after[k] != v},
                       after={k: v for k, v in after.items() if before[k] != v})
    return site_detail(session, site.name)


def _view(site: Site, devices: int, history: tuple[SiteChange, ...] = ()) -> SiteView:
    assert site.id is not None
    return SiteView(site.id, site.name, site.trust, site.pupils, site.postcode, outcode(site.postcode), site.nation,
                    site.timezone, devices, history)


def _check(field: str, value: Any) -> Any:
    if field == "pupils":
        return _pupils(value)
    text = "" if value is None else _text(field, value)
    if field == "name":
        if not text:
            raise SiteError("a site's name cannot be empty")
        return text
    if not text:
        if field == "timezone":
            raise SiteError("a site needs a time zone (e.g. Europe/London)")
        return None
    if field == "trust":
        return text
    if field == "postcode":
        return normalise_postcode(text)
    if field == "nation":
        return parse_nation(text).value
    return _timezone(text)


def _text(field: str, value: Any, limit: int | None = None) -> str:
    if not isinstance(value, str):
        raise SiteError(f"{field} must be text")
    text = value.strip()
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text):
        raise SiteError(f"{field} must not contain control characters")
    limit = limit or {"name": 100, "trust": 100, "postcode": 10, "nation": 20, "timezone": 64}[field]
    if len(text) > limit:
        raise SiteError(f"{field} is longer than {limit} characters")
    return text


def _pupils(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SiteError("pupils must be a whole number")
    try:
        number = int(value)
    except ValueError:
        raise SiteError(f"pupils {value!r} is not a whole number") from None
    if not 0 <= number <= MAX_PUPILS:
        raise SiteError(f"pupils must be between 0 and {MAX_PUPILS:,}, not {number:,}")
    return number


def normalise_postcode(text: str) -> str:
    """A full UK postcode in its usual form ("ls6 2qz" → "LS6 2QZ"); anything else is refused."""
    match = _POSTCODE.match(re.sub(r"\s+", "", text.upper()))
    if match is None:
        raise SiteError(f"postcode {text!r} is not a UK postcode (e.g. LS6 2QZ)")
    return f"{match.group(1)} {match.group(2)}"


def parse_nation(text: str) -> Nation:
    try:
        return Nation(text.strip().lower().replace("-", "_").replace(" ", "_"))
    except ValueError:
        raise SiteError(f"nation {text!r} is not one of {', '.join(n.replace('_', '-') for n in Nation)}") from None


def _check_nation_and_postcode(nation: str | None, postcode: str | None) -> None:
    """Northern Ireland's postcodes, and only they, start BT: a mismatch is a typing mistake in one of them."""
    if nation is None or postcode is None:
        return
    if (nation == Nation.NORTHERN_IRELAND) != postcode.startswith("BT"):
        raise SiteError(f"postcode {postcode} is not in {nation.replace('_', ' ').title()}"
                        if nation == Nation.NORTHERN_IRELAND else
                        f"postcode {postcode} is in Northern Ireland, not {nation.title()}")


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezone(text: str) -> str:
    if text not in _zones():
        raise SiteError(f"time zone {text!r} is not an IANA time zone (e.g. Europe/London)")
    return text
