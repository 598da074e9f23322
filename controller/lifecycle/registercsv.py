"""The asset register as CSV: export, and import that checks every row before anything is written.

Rows are matched to devices by the register's own id (the first column of an export), then by the identity
evidence: serial, asset tag, then a hostname only one device of the site has and none with a serial. A column
left out of the file is left alone; an empty cell clears the field. Facts an agent reports (hostname, class,
vendor, model) are kept as the agent reports them; room and tags are the register's to set (source
"register"). State changes go through the lifecycle rules like any other move. Export → import → export gives
the same bytes and changes nothing.

A cell starting with =, +, -, @, a tab or a carriage return would run as a formula in a spreadsheet (OWASP
"CSV injection"), so export writes it after a single quote, and import takes the quote off again.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlmodel import Session, col, select

from controller.lifecycle import service
from controller.lifecycle.evidence import missing_for
from controller.lifecycle.models import Asset
from controller.lifecycle.states import Outcome, Refused, State, check_move
from controller.register import changes
from controller.register.models import Device, Site
from controller.timeutil import utcnow

DEVICE_FIELDS = ("hostname", "device_class", "vendor", "model", "serial")
PLACEMENT_FIELDS = ("room", "tags")  # where policies look; the register's to set (source "register")
REGISTER_SOURCE = "register"
TAG_SEPARATOR = ";"
ASSET_FIELDS = ("asset_tag", "assigned_to", "location", "purchase_date", "purchase_price", "supplier",
                "procurement_route", "funding", "warranty_end", "os_end_of_support", "os_esu", "review_date",
                "disposed_on")
COLUMNS = ("id", "site", *DEVICE_FIELDS, *PLACEMENT_FIELDS, "state", "outcome", *ASSET_FIELDS)
DATES = ("purchase_date", "warranty_end", "os_end_of_support", "review_date", "disposed_on")
MAX_LENGTH = {"site": 100, "hostname": 255, "device_class": 32, "vendor": 255, "model": 255, "serial": 255,
              "asset_tag": 64, "assigned_to": 100, "location": 100, "supplier": 100, "procurement_route": 100,
              "funding": 100, "room": 100, "tags": 1000}
MAX_TAG_LENGTH = 50
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"


# ---- export ------------------------------------------------------------------------------------------

def export_csv(session: Session, site: str | None = None, may_see: Callable[[int], bool] | None = None) -> str:
    query = (select(Device, Asset, Site.name).join(Site, col(Site.id) == Device.site_id)
             .join(Asset, col(Asset.device_id) == Device.id, isouter=True))
    if site is not None:
        query = query.where(Site.name == site)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180; Python quotes a cell with a CR only then
    writer.writerow(COLUMNS)
    for device, asset, site_name in session.exec(query.order_by(Site.name, Device.hostname, Device.id)).all():
        if may_see is not None and not may_see(device.site_id):
            continue
        values = {"id": device.id, "site": site_name, **{f: getattr(device, f) for f in DEVICE_FIELDS},
                  "room": device.room, "tags": TAG_SEPARATOR.join(device.tags or ()) or None,
                  "state": asset.state if asset else State.DEPLOYED.value, "outcome": asset.outcome if asset else None}
        for f in ASSET_FIELDS:
            values[f] = _asset_value(asset, f) if asset else None
        writer.writerow([escape_formula(_text(values[c])) for c in COLUMNS])
    return out.getvalue()


def _asset_value(asset: Asset, name: str) -> Any:
    if name == "purchase_price":
        return None if asset.purchase_price_pence is None else format_pounds(asset.purchase_price_pence)
    return getattr(asset, name)


def format_pounds(pence: int) -> str:
    return f"{pence // 100}.{pence % 100:02d}"


def escape_formula(text: str) -> str:
    """A cell a spreadsheet would not run: one starting with a formula character (or with the escape
    itself, so that :func:`unescape_formula` gives back exactly what was written) gets a leading quote."""
    return ESCAPE + text if text.startswith((*FORMULA_STARTS, ESCAPE)) else text


def unescape_formula(text: str) -> str:
    escaped = text.startswith(ESCAPE) and text[1:].startswith((*FORMULA_STARTS, ESCAPE))
    return text[1:] if escaped else text


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value.isoformat() if isinstance(value, date) else str(value)


# ---- parsing -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """One parsed line: only the columns the file has (absent columns are left alone)."""

    line: int
    values: dict[str, Any]


def parse_register(text: str) -> list[Row]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    headers = reader.fieldnames or []
    if unknown := [h for h in headers if h not in COLUMNS]:
        raise Refused(f"line 1: unknown column(s) {', '.join(unknown)}; columns are {', '.join(COLUMNS)}")
    if "site" not in headers or not {"id", "serial", "asset_tag", "hostname"} & set(headers):
        raise Refused("line 1: the file needs a site column and an id, serial, asset_tag or hostname column")
    rows, errors = [], []
    for line, raw in enumerate(reader, start=2):
        try:
            rows.append(Row(line, {k: parse_value(k, v) for k, v in raw.items() if k in COLUMNS}))
        except Refused as exc:
            errors.append(f"line {line}: {exc}")
    _raise(errors)
    return rows


def parse_value(column: str, text: str | None) -> Any:
    text = unescape_formula((text or "").strip())
    if not text:
        return None
    if len(text) > MAX_LENGTH.get(column, 10_000):
        raise Refused(f"{column} is longer than {MAX_LENGTH[column]} characters")
    if column in DATES:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise Refused(f"{column} {text!r} is not a date (YYYY-MM-DD)") from None
    if column == "purchase_price":
        return parse_pounds(text)
    if column == "id":
        if not (text.isascii() and text.isdigit()) or len(text) > 10:
            raise Refused(f"id {text!r} is not a device id (digits, as `assets export` writes it)")
        return int(text)
    if column == "tags":
        return parse_tags(text)
    if column == "os_esu":
        if text.lower() not in ("yes", "no", "true", "false"):
            raise Refused(f"os_esu {text!r} is not yes or no")
        return text.lower() in ("yes", "true")
    if column == "state":
        return _parse(State, column, text)
    if column == "outcome":
        return _parse(Outcome, column, text)
    return text


def parse_tags(text: str) -> list[str] | None:
    """"signage; exam-room" → ["signage", "exam-room"]: in the order given, each once."""
    tags = list(dict.fromkeys(t.strip() for t in text.split(TAG_SEPARATOR) if t.strip()))
    if too_long := [t for t in tags if len(t) > MAX_TAG_LENGTH]:
        raise Refused(f"tag {too_long[0][:60]!r} is longer than {MAX_TAG_LENGTH} characters")
    return tags or None


def parse_pounds(text: str) -> int:
    try:
        pounds = Decimal(text.lstrip("£").replace(",", ""))
    except InvalidOperation:
        raise Refused(f"purchase_price {text!r} is not an amount in pounds (e.g. 499.00)") from None
    pence = pounds * 100
    if pence < 0 or pence != pence.to_integral_value():
        raise Refused(f"purchase_price {text!r} must be positive, in pounds and pence")
    return int(pence)


def _parse(kind: Callable[[str], Any], column: str, text: str) -> Any:
    try:
        return kind(text.lower().replace(" ", "_").replace("-", "_"))
    except ValueError:
        raise Refused(f"{column} {text!r} is not one of {', '.join(kind)}") from None  # type: ignore[call-overload]


def _raise(errors: list[str]) -> None:
    if errors:
        shown = "; ".join(errors[:10])
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise Refused(f"nothing imported: {shown}{more}")


# ---- import ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int
    moved: int


def import_rows(session: Session, rows: Iterable[Row], actor: str, source: str = "CSV import") -> ImportResult:
    """Check every row against the register, then write them all in the caller's transaction; any bad
    row refuses the whole file, naming every bad line."""
    rows = list(rows)
    sites = {s.name: s for s in session.exec(select(Site)).all()}
    errors: list[str] = []
    plans: list[tuple[Row, Device | None]] = []
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        try:
            plans.append((row, _check(session, row, sites, seen)))
        except Refused as exc:
            errors.append(f"line {row.line}: {exc}")
    _raise(errors)
    created = updated = unchanged = moved = 0
    for row, device in plans:
        if device is None:
            _create(session, row, sites[row.values["site"]], actor, source)
            created += 1
            continue
        changed = _update(session, device, row, actor)
        target = row.values.get("state")
        if target is not None and target != service.asset_of(session, device, actor).state:
            service.move(session, str(device.id), target, f"{source}, line {row.line}", actor,
                         outcome=row.values.get("outcome"), on=row.values.get("disposed_on"))
            moved += 1
        elif changed:
            updated += 1
        else:
            unchanged += 1
    return ImportResult(created, updated, unchanged, moved)


def _check(session: Session, row: Row, sites: dict[str, Site], seen: dict[tuple[str, str], int]) -> Device | None:
    v = row.values
    if v.get("site") not in sites:
        raise Refused(f"unknown site {v.get('site')!r}" + (f"; sites are {', '.join(sorted(sites))}" if sites else ""))
    for key in ("id", "serial", "asset_tag"):
        if v.get(key):
            if (key, v[key]) in seen:
                raise Refused(f"{key} {v[key]!r} is also on line {seen[(key, v[key])]}")
            seen[(key, v[key])] = row.line
    device = _match(session, v)
    if device is None:
        return _check_new(session, v)
    if device.site_id != sites[v["site"]].id:
        raise Refused(f"device {device.id} ({device.hostname}) belongs to another site")
    if v.get("asset_tag"):
        owner = session.exec(select(Asset.device_id).where(Asset.asset_tag == v["asset_tag"])).first()
        if owner is not None and owner != device.id:
            raise Refused(f"asset tag {v['asset_tag']!r} is already on device {owner}")
    asset = session.get(Asset, device.id)
    current = State(asset.state) if asset else State.DEPLOYED
    target = v.get("state")
    if target is not None and target != current:
        outcome = v.get("outcome")
        check_move(current, target, outcome, missing_for(target, service.evidence_of(
            session, device.id, asset.batch_id if asset else None)))
    elif "outcome" in v and v["outcome"] != (asset.outcome if asset else None):
        raise Refused("the outcome is set only by the move to disposed")
    if v.get("disposed_on") is not None and (target or current) is not State.DISPOSED:
        raise Refused("disposed_on is only given for a disposed device")
    return device


def _check_new(session: Session, v: dict[str, Any]) -> None:
    if not v.get("hostname"):
        raise Refused("a new device needs a hostname")
    if v.get("asset_tag") and session.exec(select(Asset).where(Asset.asset_tag == v["asset_tag"])).first():
        raise Refused(f"asset tag {v['asset_tag']!r} is already on another device")
    if v.get("state") in (State.SANITISED, State.DISPOSED):
        raise Refused(f"a new device cannot enter as {v['state']}: record its disposal evidence with "
                      "`caretaker lifecycle move`")
    if v.get("outcome") is not None or v.get("disposed_on") is not None:
        raise Refused("a new device cannot have a disposal outcome or date")
    return None


def _match(session: Session, v: dict[str, Any]) -> Device | None:
    """The device the row describes: by id, then serial, asset tag, and a hostname the site has once."""
    if v.get("id") is not None and (by_id := session.get(Device, v["id"])) is not None:
        return by_id
    if v.get("serial"):
        found = session.exec(select(Device).where(Device.serial == v["serial"]).order_by(Device.id)).first()
        if found is not None:
            return found
    if v.get("asset_tag"):
        found = session.exec(select(Device).join(Asset, col(Asset.device_id) == Device.id)
                             .where(Asset.asset_tag == v["asset_tag"])).first()
        if found is not None:
            return found
    if v.get("hostname") and not v.get("serial"):
        named = session.exec(select(Device).join(Site, col(Site.id) == Device.site_id).where(
            Site.name == v.get("site"), Device.hostname == v["hostname"]).limit(2)).all()
        if len(named) == 1 and not named[0].serial:
            return named[0]
    return None


def _create(session: Session, row: Row, site: Site, actor: str, source: str) -> None:
    v = row.values
    device = Device(site_id=site.id, hostname=v["hostname"], device_class=v.get("device_class") or "unknown",
                    vendor=v.get("vendor"), model=v.get("model"), serial=v.get("serial"),
                    last_seen=v.get("last_seen"), room=v.get("room"), tags=v.get("tags"))
    session.add(device)
    session.flush()
    changes.record(session, actor, "create", device,
                   after={**changes.snapshot(device, (*DEVICE_FIELDS, *PLACEMENT_FIELDS)), "source": source})
    asset = service.enter_register(session, device, actor, v.get("state") or State.IN_STOCK,
                                   f"{source}, line {row.line}")
    _apply_asset(asset, v)
    session.add(asset)


def _update(session: Session, device: Device, row: Row, actor: str) -> bool:
    """Write the row's register fields (and, for a device no agent reports, its own facts)."""
    v = row.values
    changed = False
    if device.inventory is None:
        fields = tuple(f for f in DEVICE_FIELDS if f in v and f != "serial" and (v[f] or f != "hostname"))
        before = changes.snapshot(device, fields)
        for f in fields:
            setattr(device, f, v[f] if v[f] is not None or f != "device_class" else "unknown")
        if v.get("last_seen") and (device.last_seen is None or v["last_seen"] > device.last_seen):
            device.last_seen = v["last_seen"]
        if (after := changes.snapshot(device, fields)) != before:
            changes.record(session, actor, "update", device, before=before, after=after)
            session.add(device)
            changed = True
    changed = _place(session, device, v, actor) or changed
    asset = service.asset_of(session, device, actor)
    before = changes.snapshot(asset, _asset_columns(v))
    _apply_asset(asset, v)
    after = changes.snapshot(asset, _asset_columns(v))
    if after != before:
        asset.updated_at = utcnow()
        session.add(asset)
        changes.record(session, actor, "lifecycle.update", device,
                       before={k: x for k, x in before.items() if after[k] != x},
                       after={k: x for k, x in after.items() if before[k] != x})
        changed = True
    return changed


def _place(session: Session, device: Device, v: dict[str, Any], actor: str) -> bool:
    """The row's room and tags, written as the register's (i11b's precedence: source "register")."""
    fields = tuple(f for f in PLACEMENT_FIELDS if f in v)
    before = changes.snapshot(device, fields)
    for f in fields:
        setattr(device, f, v[f])
    after = changes.snapshot(device, fields)
    if after == before:
        return False
    session.add(device)
    changes.record(session, actor, "place", device, before=before, after={**after, "source": REGISTER_SOURCE})
    return True


def _asset_columns(v: dict[str, Any]) -> tuple[str, ...]:
    return tuple("purchase_price_pence" if f == "purchase_price" else f for f in ASSET_FIELDS if f in v)


def _apply_asset(asset: Asset, v: dict[str, Any]) -> None:
    for f in ASSET_FIELDS:
        if f in v:
            setattr(asset, "purchase_price_pence" if f == "purchase_price" else f, v[f])
