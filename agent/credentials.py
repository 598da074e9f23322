"""The agent's identity at its controller, kept in one small file only its owner can read.

Enrolment trades a site token for an agent id and secret once; losing this file means enrolling
again, and leaking it lets someone report as this machine. So the file is created 0600 from the
first byte (never chmod-ed after being written) and replaced atomically, so a crash mid-write leaves
either the old credentials or the new ones, never half of each.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from agent.protocol import EnrollResponse, Inventory


class CredentialsError(Exception):
    """The credentials file exists but cannot be used."""


@dataclass(frozen=True)
class Credentials:
    controller: str
    agent_id: str
    secret: str = field(repr=False)  # never in a log line, a traceback's repr or an error message
    device_id: int
    site: str
    # The hardware these credentials were issued to (SMBIOS UUID and physical MACs), so a disk image
    # cloned after enrolment can tell that it is now running somewhere else.
    hardware: dict = field(default_factory=dict)

    @classmethod
    def from_enrollment(cls, controller: str, answer: EnrollResponse, inventory: Inventory) -> Credentials:
        return cls(controller=controller, agent_id=answer.agent_id, secret=answer.secret,
                   device_id=answer.device_id, site=answer.site, hardware=hardware_of(inventory))

    def issued_to(self, inventory: Inventory) -> bool:
        """False when these credentials were made on other hardware: a disk image cloned with them.

        The SMBIOS UUID decides when both sides know it; otherwise one physical MAC in common is
        enough, so replacing a network card does not count as a different machine.
        """
        if not self.hardware:
            return True
        current = hardware_of(inventory)
        if self.hardware.get("uuid") and current["uuid"]:
            return self.hardware["uuid"] == current["uuid"]
        before, now = set(self.hardware.get("macs", ())), set(current["macs"])
        return not before or not now or bool(before & now)

    @property
    def authorization(self) -> str:
        """The value of the HTTP Authorization header the controller expects."""
        return f"Bearer {self.agent_id}:{self.secret}"


_FIELDS: dict[str, type] = {"controller": str, "agent_id": str, "secret": str, "device_id": int, "site": str}


def hardware_of(inventory: Inventory) -> dict:
    uuid = (inventory.smbios.uuid or "").strip().lower() or None
    return {"uuid": uuid, "macs": sorted({nic.mac.lower() for nic in inventory.nics if nic.mac})}


def load(path: Path) -> Credentials | None:
    """The stored credentials, or None if the agent has never enrolled."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"cannot read {path}: {exc.__class__.__name__}") from None
    if not (isinstance(data, dict) and all(type(data.get(name)) is kind for name, kind in _FIELDS.items())):
        raise CredentialsError(f"{path} is not a Caretaker credentials file; delete it and enrol again")
    hardware = data.get("hardware") if isinstance(data.get("hardware"), dict) else {}
    return Credentials(**{name: data[name] for name in _FIELDS}, hardware=hardware)


def save(path: Path, creds: Credentials) -> None:
    """Write ``creds`` to ``path`` with mode 0600, atomically and durably."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    body = json.dumps({**{name: getattr(creds, name) for name in _FIELDS}, "hardware": creds.hardware}, indent=2)
    # O_EXCL with mode 0600, so the secret is never readable by others, even briefly (and without
    # tempfile, which would cost the agent's resident memory more than this line).
    tmp = path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(body + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; a directory cannot be opened for fsync everywhere, so best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
