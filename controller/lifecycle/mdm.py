"""Devices no agent runs on, from the management consoles that know them.

Two real export shapes, by their column headers:

- Google Admin, Chrome devices (the Directory API field names, as the console's "Download" and GAM's
  ``print cros`` write them): ``serialNumber``, ``model``, ``annotatedAssetId``, ``annotatedUser``,
  ``annotatedLocation``, ``autoUpdateExpiration`` (the Auto Update Expiration date: end of OS support),
  ``lastSync``, ``status``, ``osVersion``. Deprovisioned devices are left out.
- Microsoft Intune, All devices export: ``Device name``, ``Serial number``, ``Manufacturer``,
  ``Model``, ``OS``, ``OS version``, ``Primary user UPN``, ``Last check-in``. Only iPads are taken
  (class ``tablet``); Windows machines carry an agent.

Each becomes a register row (class ``chromebook`` or ``tablet``, vendor and model) for the same
checked import as the register CSV; the energy catalogue gives such classes their estimated watts.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from controller.lifecycle.registercsv import MAX_LENGTH, Row
from controller.lifecycle.states import Refused

GOOGLE = ("serialNumber", "model")
INTUNE = ("Device name", "Serial number", "Model", "OS")


def detect(headers: list[str]) -> str | None:
    if all(h in headers for h in GOOGLE):
        return "chromebook"
    if all(h in headers for h in INTUNE):
        return "intune"
    return None


def parse_mdm(text: str, site: str) -> tuple[list[Row], int]:
    """(register rows, rows skipped as not ours) from a Google Admin or Intune export."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    kind = detect(list(reader.fieldnames or []))
    if kind is None:
        raise Refused("line 1: not a Google Admin Chrome devices export (serialNumber, model) nor an Intune "
                      "devices export (Device name, Serial number, Model, OS)")
    convert: Callable[[dict[str, str]], dict[str, Any] | None] = _google if kind == "chromebook" else _intune
    rows, errors, skipped = [], [], 0
    for line, raw in enumerate(reader, start=2):
        try:
            values = convert({k: (v or "").strip() for k, v in raw.items() if k})
        except Refused as exc:
            errors.append(f"line {line}: {exc}")
            continue
        if values is None:
            skipped += 1
            continue
        for column, limit in MAX_LENGTH.items():
            if isinstance(values.get(column), str) and len(values[column]) > limit:
                errors.append(f"line {line}: {column} is longer than {limit} characters")
        rows.append(Row(line, {"site": site, **values}))
    if errors:
        raise Refused(f"nothing imported: {'; '.join(errors[:10])}")
    return rows, skipped


def _google(r: dict[str, str]) -> dict[str, Any] | None:
    if r.get("status", "").upper() == "DEPROVISIONED":
        return None
    if not r["serialNumber"]:
        raise Refused("serialNumber is empty")
    model = r["model"]
    values: dict[str, Any] = {"serial": r["serialNumber"], "device_class": "chromebook",
                              "hostname": r.get("annotatedAssetId") or r["serialNumber"],
                              "vendor": model.split(" ")[0] if model else None, "model": model or None}
    for column, field in (("annotatedAssetId", "asset_tag"), ("annotatedUser", "assigned_to"),
                          ("annotatedLocation", "location")):
        if column in r:
            values[field] = r[column] or None
    if r.get("autoUpdateExpiration"):
        values["os_end_of_support"] = _date(r["autoUpdateExpiration"], "autoUpdateExpiration")
    if r.get("lastSync"):
        values["last_seen"] = _when(r["lastSync"], "lastSync")
    return values


def _intune(r: dict[str, str]) -> dict[str, Any] | None:
    if r["OS"].casefold() not in ("ios", "ipados") or not r["Model"].casefold().startswith("ipad"):
        return None
    if not r["Serial number"]:
        raise Refused("Serial number is empty")
    values: dict[str, Any] = {"serial": r["Serial number"], "device_class": "tablet",
                              "hostname": r["Device name"] or r["Serial number"],
                              "vendor": r.get("Manufacturer") or "Apple", "model": r["Model"]}
    if "Primary user UPN" in r:
        values["assigned_to"] = r["Primary user UPN"] or None
    if r.get("Last check-in"):
        values["last_seen"] = _when(r["Last check-in"], "Last check-in")
    return values


def _date(text: str, column: str) -> date:
    try:
        return _when(text, column).date() if "T" in text or " " in text else date.fromisoformat(text)
    except ValueError:
        raise Refused(f"{column} {text!r} is not a date") from None


def _when(text: str, column: str) -> datetime:
    """ISO 8601 times; the consoles write UTC, so a time without a zone is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("/", "-"))
    except ValueError:
        raise Refused(f"{column} {text!r} is not an ISO 8601 time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
