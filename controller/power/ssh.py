"""Agentless servers over SSH (paramiko): inventory and power actions with key authentication.

Host keys are checked against a known_hosts file the operator supplies, with paramiko's RejectPolicy:
a host not in it, or one whose key changed, is refused with a one-line reason. Never AutoAddPolicy:
trusting whatever key answers would hand a server's power switch to anyone on the path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import paramiko
from sqlmodel import Session, select

from agent.protocol import Inventory
from controller.errors import DomainError
from controller.power.ssh_inventory import SCRIPT, parse_inventory
from controller.register.devices import apply_inventory, create_device, identify
from controller.register.identity import fingerprint_of
from controller.register.models import ActionRecord, Device, Site

CONNECT_TIMEOUT_SECONDS = 10.0
COMMAND_TIMEOUT_SECONDS = 60.0

# The command that does each action, per OS as `uname -s` names it. ``sudo -n`` fails at once rather
# than waiting for a password nobody will type; it is left out when signing in as root.
POWER_COMMANDS = {
    "Linux": {"off": "systemctl poweroff", "reboot": "systemctl reboot", "sleep": "systemctl suspend"},
    "Darwin": {"off": "shutdown -h now", "reboot": "shutdown -r now", "sleep": "pmset sleepnow"},
}
ACTION_KINDS = {"off": "shutdown", "reboot": "reboot", "sleep": "sleep"}


class SshRefused(DomainError):
    """The host could not be used; the message is one line, safe to print (no secrets)."""


@dataclass(frozen=True)
class SshTarget:
    host: str
    user: str
    key_file: Path
    known_hosts: Path
    port: int = 22

    @property
    def label(self) -> str:
        return f"{self.user}@{self.host}" + (f":{self.port}" if self.port != 22 else "")


def connect(target: SshTarget) -> paramiko.SSHClient:
    if not target.known_hosts.is_file():
        raise SshRefused(f"known_hosts file {target.known_hosts} does not exist; add the host's key with "
                         f"ssh-keyscan after checking its fingerprint")
    client = paramiko.SSHClient()
    try:
        client.load_host_keys(str(target.known_hosts))
    except (OSError, paramiko.SSHException) as exc:
        raise SshRefused(f"cannot read known_hosts file {target.known_hosts}: {exc}") from None
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(target.host, port=target.port, username=target.user, key_filename=str(target.key_file),
                       look_for_keys=False, allow_agent=False, timeout=CONNECT_TIMEOUT_SECONDS,
                       auth_timeout=CONNECT_TIMEOUT_SECONDS, banner_timeout=CONNECT_TIMEOUT_SECONDS)
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise SshRefused(f"{target.label}: host key CHANGED ({exc.key.get_name()} "
                         f"{exc.key.fingerprint}, known_hosts has {exc.expected_key.fingerprint}); refusing to "
                         "connect: if the server was really re-installed, replace its line in known_hosts") from None
    except paramiko.AuthenticationException:
        client.close()
        raise SshRefused(f"{target.label}: the server refused the key {target.key_file}") from None
    except paramiko.SSHException as exc:
        client.close()
        if "not found in known_hosts" in str(exc):
            raise SshRefused(f"{target.label}: host key unknown (not in {target.known_hosts}); refusing to "
                             "connect: check its fingerprint, then add it with ssh-keyscan") from None
        raise SshRefused(f"{target.label}: {exc}") from None
    except OSError as exc:  # refused, unreachable, timed out
        client.close()
        raise SshRefused(f"{target.label}: cannot connect: {getattr(exc, 'strerror', None) or exc}") from None
    return client


@dataclass(frozen=True)
class Completed:
    command: str
    status: int
    stdout: str
    stderr: str


def run(client: paramiko.SSHClient, command: str) -> Completed:
    _stdin, stdout, stderr = client.exec_command(command, timeout=COMMAND_TIMEOUT_SECONDS)
    out = stdout.read().decode("utf-8", "replace")
    err = stderr.read().decode("utf-8", "replace")
    return Completed(command, stdout.channel.recv_exit_status(), out, err)


def inventory(target: SshTarget) -> Inventory:
    client = connect(target)
    try:
        completed = run(client, SCRIPT)
    finally:
        client.close()
    try:
        return parse_inventory(completed.stdout)
    except ValueError as exc:
        raise SshRefused(f"{target.label}: {exc}") from None


def register_host(session: Session, site_name: str, found: Inventory, actor: str) -> tuple[Device, bool]:
    """The host as a device of ``site_name`` (created if new); returns it and whether it was created."""
    site = session.exec(select(Site).where(Site.name == site_name)).first()
    if site is None:
        raise SshRefused(f"no site {site_name!r}")
    result = identify(session, fingerprint_of(found))
    if result.device_id is None:
        return create_device(session, site, found, actor, result), True
    device = session.get(Device, result.device_id)
    device.site_id = site.id
    apply_inventory(session, device, found, actor)
    return device, False


def power_command(system: str, action: str, user: str) -> str:
    commands = POWER_COMMANDS.get(system)
    if commands is None:
        raise SshRefused(f"no power commands for {system!r} hosts (Linux and macOS only)")
    command = commands[action]
    return command if user == "root" else f"sudo -n {command}"


@dataclass(frozen=True)
class PowerOutcome:
    hostname: str
    command: str
    status: int | None  # None: the connection closed before an exit status came back (usual for "off")
    stderr: str


def power(target: SshTarget, action: str) -> PowerOutcome:
    """Run ``action`` (off, reboot, sleep) on the host, the command chosen by its OS."""
    if action not in ACTION_KINDS:
        raise SshRefused(f"unknown power action {action!r}; use one of {', '.join(ACTION_KINDS)}")
    client = connect(target)
    try:
        about = run(client, "uname -s; uname -n").stdout.split()
        if len(about) < 2:
            raise SshRefused(f"{target.label}: uname did not answer")
        command = power_command(about[0], action, target.user)
        try:
            completed = run(client, command)
            return PowerOutcome(about[1], command, completed.status, completed.stderr.strip()[:500])
        except (paramiko.SSHException, EOFError, OSError):
            return PowerOutcome(about[1], command, None, "")
    finally:
        client.close()


def audit_power(session: Session, site_name: str, target: SshTarget, action: str, outcome: PowerOutcome | None,
                reason: str, actor: str, at: datetime, error: str | None = None) -> ActionRecord:
    """The action in the audit log, done or failed, against the device registered under that hostname."""
    site = session.exec(select(Site).where(Site.name == site_name)).first()
    if site is None:
        raise SshRefused(f"no site {site_name!r}")
    hostname = outcome.hostname if outcome else target.host
    device_id = session.exec(select(Device.id).where(Device.site_id == site.id, Device.hostname == hostname)).first()
    failed = error is not None or (outcome is not None and outcome.status not in (0, None))
    record = ActionRecord(
        at=at, site_id=site.id, device_id=device_id, kind=ACTION_KINDS.get(action, action),
        outcome="failed" if failed else "done", mode="force", reason=reason[:500], actor=actor,
        details={"via": "ssh", "host": target.host, "port": target.port, "user": target.user,
                 "command": outcome.command if outcome else None, "exit_status": outcome.status if outcome else None,
                 "error": error or (outcome.stderr if outcome and failed else None)})
    session.add(record)
    return record
