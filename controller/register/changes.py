"""The change log: every write to a device, token or agent adds a record in the same transaction."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from controller.register.models import ChangeRecord


def record(session: Session, actor: str, action: str, obj: Any, before: dict | None = None,
           after: dict | None = None) -> None:
    session.add(ChangeRecord(actor=actor, action=action, object_type=type(obj).__name__.lower(),
                             object_id=str(obj.id), before=before, after=after))


def snapshot(obj: Any, fields: tuple[str, ...]) -> dict:
    return {f: _plain(getattr(obj, f)) for f in fields}


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
