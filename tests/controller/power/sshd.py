"""A real OpenSSH server on loopback for the SSH tests: our own `sshd -D` with a temporary host key,
signing in the current user by key. One key has a forced command that records what it was asked to
run (and runs only `uname`), so power actions reach the server without powering this machine off."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
PROBE = "uname -s; uname -n"


def sshd_or_skip() -> str:
    if not Path(SSHD).exists() or shutil.which("ssh-keygen") is None:
        if os.environ.get("CI"):
            pytest.fail("sshd is not installed; CI must run .ci/setup-sshd.sh (Debian openssh-server)")
        pytest.skip("sshd is not installed (Debian package openssh-server)")
    return SSHD


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


@dataclass
class Sshd:
    port: int
    user: str
    key: Path  # signs in with a normal shell
    power_key: Path  # signs in to the recording forced command
    known_hosts: Path  # holds this server's real key
    unknown_hosts: Path  # holds nothing for this server
    changed_hosts: Path  # holds another key for this server's address
    recorded: Path
    process: subprocess.Popen

    def commands(self) -> list[str]:
        return self.recorded.read_text().splitlines() if self.recorded.exists() else []


def start(workdir: Path, port: int) -> Sshd:
    sshd = sshd_or_skip()
    workdir.mkdir(parents=True, exist_ok=True)
    host_pub = keygen(workdir / "host_key")
    other_pub = keygen(workdir / "other_host_key")
    user_pub = keygen(workdir / "user_key")
    power_pub = keygen(workdir / "power_key")
    recorded = workdir / "commands.log"
    recorder = workdir / "record.sh"
    recorder.write_text(f'#!/bin/sh\nprintf "%s\\n" "$SSH_ORIGINAL_COMMAND" >> {recorded}\n'
                        f'if [ "$SSH_ORIGINAL_COMMAND" = "{PROBE}" ]; then\n'
                        '  exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\nfi\n'
                        'exit 0\n')
    recorder.chmod(0o755)
    authorized = workdir / "authorized_keys"
    authorized.write_text(f"{user_pub}\ncommand=\"{recorder}\",no-pty,no-port-forwarding {power_pub}\n")
    authorized.chmod(0o600)
    config = workdir / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {workdir / 'host_key'}",
        f"AuthorizedKeysFile {authorized}", f"PidFile {workdir / 'sshd.pid'}",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password", "StrictModes no", "UsePAM no", "LogLevel VERBOSE", ""]))
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory sshd insists on
    log = (workdir / "sshd.log").open("ab")
    process = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    address = f"[127.0.0.1]:{port}"
    known, unknown, changed = workdir / "known_hosts", workdir / "unknown_hosts", workdir / "changed_hosts"
    known.write_text(f"{address} {host_pub}\n")
    unknown.write_text(f"[127.0.0.1]:{port + 1} {host_pub}\n")
    changed.write_text(f"{address} {other_pub}\n")
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {(workdir / 'sshd.log').read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    break
        except OSError:
            assert time.monotonic() < deadline, "sshd did not start listening"
            time.sleep(0.1)
    return Sshd(port, getpass.getuser(), workdir / "user_key", workdir / "power_key", known, unknown, changed,
                recorded, process)


def stop(server: Sshd) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
